document.addEventListener("DOMContentLoaded",function(){var f=document.getElementById("saml-post-form");if(f){f.submit();}});
