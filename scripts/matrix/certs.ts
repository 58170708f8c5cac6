/**
 * A throw-away certificate authority and one server certificate for
 * 127.0.0.1/localhost, made with openssl, so every TLS-capable server of the
 * matrix can be reached with CA verification.
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

/**
 * Creates `ca.pem`, `server.pem` and `server-key.pem` in `dir` unless they
 * exist. Files are world-readable (0644) so servers running as the matrix user
 * can copy them; services that insist on stricter key modes copy the key into
 * their own data directory.
 */
export async function ensureCerts(dir: string): Promise<void> {
  const p = (f: string) => `${dir}/${f}`;
  try {
    await Deno.stat(p(CERT_FILES.key));
    await Deno.stat(p(CERT_FILES.cert));
    await Deno.stat(p(CERT_FILES.ca));
    return;
  } catch {
    // make them below
  }
  await Deno.mkdir(dir, { recursive: true });
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
  const ext = p("server.ext");
  await Deno.writeTextFile(
    ext,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    p(CERT_FILES.key),
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
    p(CERT_FILES.cert),
  ]);
  for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) await Deno.chmod(p(f), 0o644);
}
