// A second, independently written wallet for the gateway's OpenID4VP verifier (issue 18): the maintained
// TypeScript libraries of the OpenWallet Foundation / Animo, @openid4vc/openid4vp (the wallet side of
// OpenID4VP 1.0: parse the invocation URL, fetch and verify the signed request object with its x509_hash
// client id, build and encrypt the direct_post.jwt response, submit it) and @sd-jwt/sd-jwt-vc (the
// SD-JWT presentation with its KB-JWT). Only the crypto callbacks (jose) and the choice of disclosures
// from the DCQL claim paths are written here.
//
// stdin: {"invocation_url", "issuance" (SD-JWT with all disclosures), "holder_jwk" (private JWK),
//         "allow_http" (the tests' loopback verifier: http:// URLs, which the library refuses by default)}
// stdout: {"status", "body", "presentation", "client_id"} or {"error"} with exit code 1.
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { CompactEncrypt, compactVerify, importJWK, importX509 } from 'jose'
import { setGlobalConfig } from '@openid4vc/oauth2'
import { Openid4vpClient } from '@openid4vc/openid4vp'
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc'
import { digest, ES256 } from '@sd-jwt/crypto-nodejs'

const read = async () => {
  let text = ''
  for await (const chunk of process.stdin) text += chunk
  return JSON.parse(text)
}

const pem = (b64) => `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`

const callbacks = {
  hash: (data, alg) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest(),
  generateRandom: (n) => randomBytes(n),
  // the request object: signed by the leaf of its x5c (the library checks client_id = x509_hash of it)
  verifyJwt: async (signer, jwt) => {
    if (signer.method !== 'x5c') return { verified: false }
    const key = await importX509(pem(signer.x5c[0]), signer.alg)
    try {
      await compactVerify(jwt.compact, key)
    } catch {
      return { verified: false }
    }
    const leaf = new X509Certificate(Buffer.from(signer.x5c[0], 'base64'))
    return { verified: true, signerJwk: leaf.publicKey.export({ format: 'jwk' }) }
  },
  getX509CertificateMetadata: (certificate) => {
    const leaf = new X509Certificate(Buffer.from(certificate, 'base64'))
    const names = (leaf.subjectAltName ?? '').split(', ')
    return {
      sanDnsNames: names.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4)),
      sanUriNames: names.filter((n) => n.startsWith('URI:')).map((n) => n.slice(4)),
    }
  },
  encryptJwe: async (encryptor, data) => {
    const header = { alg: encryptor.alg, enc: encryptor.enc, kid: encryptor.publicJwk.kid }
    if (encryptor.apu) header.apu = encryptor.apu
    if (encryptor.apv) header.apv = encryptor.apv
    const key = await importJWK(encryptor.publicJwk, encryptor.alg)
    const jwe = await new CompactEncrypt(new TextEncoder().encode(data)).setProtectedHeader(header).encrypt(key)
    return { encryptionJwk: encryptor.publicJwk, jwe }
  },
  signJwt: async () => {
    throw new Error('this wallet signs nothing but the KB-JWT')
  },
  decryptJwe: async () => ({ decrypted: false }),
  clientAuthentication: () => {},
}

// The presentation frame for DCQL claim paths: a path to an object discloses it whole (with every
// nested member), a longer path only the member named.
const everything = (value) => {
  if (Array.isArray(value)) return Object.fromEntries(value.map((v, i) => [i, everything(v)]))
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.keys(value).map((k) => [k, everything(value[k])]))
  return true
}
const frameFor = (claims, paths) => {
  const frame = {}
  for (const path of paths) {
    let value = claims
    let into = frame
    for (const [i, step] of path.entries()) {
      if (value === null || typeof value !== 'object' || !(step in value)) break
      if (i === path.length - 1) {
        into[step] = everything(value[step])
      } else {
        into[step] = typeof into[step] === 'object' ? into[step] : {}
        into = into[step]
        value = value[step]
      }
    }
  }
  return frame
}

const main = async () => {
  const input = await read()
  setGlobalConfig({ allowInsecureUrls: input.allow_http === true })
  const holderJwk = input.holder_jwk
  const client = new Openid4vpClient({ callbacks })
  const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: input.invocation_url })
  const resolved = await client.resolveOpenId4vpAuthorizationRequest({ authorizationRequestPayload: parsed.params })
  const request = resolved.authorizationRequestPayload
  const query = resolved.dcql.query.credentials.find((c) => c.format === 'dc+sd-jwt')
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    hashAlg: 'sha-256',
    kbSigner: await ES256.getSigner(holderJwk),
    kbSignAlg: 'ES256',
  })
  const claims = await sdjwt.getClaims(input.issuance)
  const frame = frameFor(claims, (query.claims ?? []).map((c) => c.path))
  const presentation = await sdjwt.present(input.issuance, frame, {
    kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: resolved.client.effective, nonce: request.nonce } },
  })
  const response = await client.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: { [query.id]: [presentation] } },
    jarm: {
      encryption: {},
      serverMetadata: {
        authorization_signing_alg_values_supported: [],
        authorization_encryption_alg_values_supported: ['ECDH-ES'],
        authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'],
      },
    },
  })
  const submitted = await client.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: response.authorizationResponsePayload,
    jarm: response.jarm ? { responseJwt: response.jarm.responseJwt } : undefined,
  })
  const body = await submitted.response.text()
  process.stdout.write(
    JSON.stringify({ status: submitted.response.status, body, presentation, client_id: resolved.client.effective, jarm: !!response.jarm }),
  )
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error), details: error?.errorDescription ?? null }))
  process.exit(1)
})
