// A relying party written the way a city's Node application would use openid-client 6: discovery,
// the authorization request (PKCE S256, state, nonce), the code exchange with the client secret and the
// library's DEFAULT client authentication (client_secret_post), the ID token checks and userinfo.
// tests/rp_node/test_openid_client.py drives it; docs/integrations/openid-client.md shows this code.
//
//   EIDGW_ISSUER=... EIDGW_CLIENT_ID=... EIDGW_CLIENT_SECRET=... EIDGW_REDIRECT_URI=... \
//     node rp.mjs authorize                      -> {"url": ..., "session": {...}}
//     node rp.mjs callback <current URL> <session JSON>
//                                                -> {"claims": {...}, "userinfo": {...}}  (exit 0)
//                                                or {"error": ..., "name": ..., "code": ...} (exit 2)
//
// Every answer is one JSON line on stdout; the session (state, nonce, PKCE verifier) is what a web
// application keeps in its own session between the two steps.
import * as client from 'openid-client'

// --- the snippet of docs/integrations/openid-client.md -------------------------------------------------
function setting(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

async function configuration() {
  return client.discovery(
    new URL(setting('EIDGW_ISSUER')),
    setting('EIDGW_CLIENT_ID'),
    setting('EIDGW_CLIENT_SECRET'), // a secret and no ClientAuth: client_secret_post, the library's default
    undefined,
    {
      timeout: 10,
      // only for the test gateway on http://127.0.0.1; a real gateway is https
      execute: process.env.EIDGW_ALLOW_HTTP === '1' ? [client.allowInsecureRequests] : [],
    },
  )
}

async function authorize(config) {
  const session = {
    code_verifier: client.randomPKCECodeVerifier(),
    state: client.randomState(),
    nonce: client.randomNonce(),
  }
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: setting('EIDGW_REDIRECT_URI'),
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(session.code_verifier),
    code_challenge_method: 'S256',
    state: session.state,
    nonce: session.nonce,
  })
  return { url: url.href, session }
}

async function callback(config, currentUrl, session) {
  // checks iss (RFC 9207: discovery says authorization_response_iss_parameter_supported), state, an
  // error response (access_denied after a cancel), then exchanges the code and checks the ID token
  const tokens = await client.authorizationCodeGrant(config, currentUrl, {
    pkceCodeVerifier: session.code_verifier,
    expectedState: session.state,
    expectedNonce: session.nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  return { claims, userinfo, id_token: tokens.id_token }
}
// --- end of the snippet ----------------------------------------------------------------------------------

function print(value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

const [command, ...args] = process.argv.slice(2)
const config = await configuration()
if (command === 'authorize') {
  print(await authorize(config))
} else if (command === 'callback' && args.length === 2) {
  try {
    print(await callback(config, new URL(args[0]), JSON.parse(args[1])))
  } catch (e) {
    // what the library raised: AuthorizationResponseError carries the OAuth error code (e.error)
    print({
      name: e.name, code: e.code, error: e.error, error_description: e.error_description, message: e.message,
      cause: e.cause instanceof Error ? { name: e.cause.name, code: e.cause.code, message: e.cause.message } : undefined,
    })
    process.exitCode = 2
  }
} else {
  process.stderr.write('usage: node rp.mjs authorize | node rp.mjs callback <current URL> <session JSON>\n')
  process.exitCode = 64
}
