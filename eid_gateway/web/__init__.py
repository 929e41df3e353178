"""The citizen-facing web layer: jinja2 pages (German default, English), texts, and the HTTP defences
(security headers, body size limit, error pages without stack traces)."""
