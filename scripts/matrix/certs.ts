/**
 * A throw-away certificate authority and one server certificate for
 * localhost and the loopback addresses the matrix's nodes use
 * ({@linkcode SERVER_IPS}), made with openssl, so every TLS-capable server of
 * the matrix can be reached with CA verification.
 *
 * @module
 */
import { run } from "./proc.ts";

/** Files written into the certs directory. */
export const CERT_FILES = {
  ca: "ca.pem",
  caKey: "ca-key.pem",
  cert: "server.pem",
  key: "server-key.pem",
} as const;

/** Addresses the server certificate is valid for: node 1 and the cluster nodes 2 and 3. */
export const SERVER_IPS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"] as const;

/** True when `server.pem` names every address of {@linkcode SERVER_IPS}. */
async function coversServerIps(cert: string): Promise<boolean> {
  const san = await run("openssl", ["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]);
  return SERVER_IPS.every((ip) => san.includes(`IP Address:${ip}`));
}

/**
 * Creates `ca.pem`, `server.pem` and `server-key.pem` in `dir` unless they
 * exist; a server certificate from before the cluster nodes' addresses is
 * issued again by the same CA (servers that already run keep the old one,
 * still valid for 127.0.0.1). Files are world-readable (0644) so servers
 * running as the matrix user can copy them; services that insist on stricter
 * key modes copy the key into their own data directory.
 */
export async function ensureCerts(dir: string): Promise<void> {
  const p = (f: string) => `${dir}/${f}`;
  let haveCa = false;
  try {
    await Deno.stat(p(CERT_FILES.ca));
    await Deno.stat(p(CERT_FILES.caKey));
    haveCa = true;
    await Deno.stat(p(CERT_FILES.key));
    if (await coversServerIps(p(CERT_FILES.cert))) return;
  } catch {
    // make what is missing below
  }
  await Deno.mkdir(dir, { recursive: true });
  if (!haveCa) await makeCa(dir);
  await makeServerCert(dir);
  for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) await Deno.chmod(p(f), 0o644);
}

async function makeCa(dir: string): Promise<void> {
  const p = (f: string) => `${dir}/${f}`;
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "3650",
    "-subj",
    "/CN=grand-tour-matrix-ca",
    "-keyout",
    p(CERT_FILES.caKey),
    "-out",
    p(CERT_FILES.ca),
  ]);
}

/** A new key and server certificate, written beside and then renamed over the old ones. */
async function makeServerCert(dir: string): Promise<void> {
  const p = (f: string) => `${dir}/${f}`;
  const ext = p("server.ext");
  const san = [...SERVER_IPS.map((ip) => `IP:${ip}`), "DNS:localhost"].join(",");
  await Deno.writeTextFile(
    ext,
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    p(`${CERT_FILES.key}.new`),
    "-out",
    p("server.csr"),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    p("server.csr"),
    "-CA",
    p(CERT_FILES.ca),
    "-CAkey",
    p(CERT_FILES.caKey),
    "-CAcreateserial",
    "-days",
    "3650",
    "-extfile",
    ext,
    "-out",
    p(`${CERT_FILES.cert}.new`),
  ]);
  // The key first: a server copying both in between gets a new key with the old certificate,
  // which fails its start loudly instead of serving a certificate that lacks an address.
  await Deno.rename(p(`${CERT_FILES.key}.new`), p(CERT_FILES.key));
  await Deno.rename(p(`${CERT_FILES.cert}.new`), p(CERT_FILES.cert));
}
