/**
 * TLS helpers for the store tests.
 *
 * @module
 */

/**
 * A PEM CA certificate that did not sign the matrix servers' certificates,
 * with the same subject name as the matrix CA, so only the key tells them
 * apart: a store that verifies properly must refuse the server with it.
 */
export async function strangerCa(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stranger-ca-" });
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=grand-tour-matrix-ca",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/ca.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error("openssl could not make a CA");
    return await Deno.readTextFile(`${dir}/ca.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
