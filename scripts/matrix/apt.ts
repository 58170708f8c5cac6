/**
 * Debian packages for the matrix: one way to ask apt which versions exist
 * and to install them, with the package lists refreshed once per run (a
 * fresh machine has none), the dpkg lock waited for, and downloads kept in
 * the matrix cache.
 *
 * @module
 */
import { run } from "./proc.ts";
import type { MatrixPaths } from "./types.ts";

const ENV = () => ({ ...Deno.env.toObject(), DEBIAN_FRONTEND: "noninteractive" });
let updated: Promise<unknown> | undefined;

/** Runs `apt-get update` the first time it is called in this process. */
export function aptUpdateOnce(): Promise<unknown> {
  updated ??= run("apt-get", ["-q", "-o", "DPkg::Lock::Timeout=900", "update"], { env: ENV() });
  return updated;
}

/** The versions apt can install of `pkg`, newest first (`apt-cache madison`). */
export async function aptVersions(pkg: string): Promise<string[]> {
  const read = async () =>
    (await run("apt-cache", ["madison", pkg])).split("\n")
      .map((l) => l.split("|")[1]?.trim()).filter((v): v is string => Boolean(v));
  const versions = await read();
  if (versions.length > 0) return versions;
  await aptUpdateOnce();
  return await read();
}

/**
 * Installs `packages` (names, or `name=version`) without recommends, waiting
 * for the dpkg lock and keeping the downloaded .deb files under the cache.
 */
export async function aptInstall(
  paths: MatrixPaths,
  packages: string[],
  options: { allowDowngrades?: boolean } = {},
): Promise<void> {
  await aptUpdateOnce();
  const archives = `${paths.cache}/apt/archives`;
  await Deno.mkdir(`${archives}/partial`, { recursive: true });
  await run("apt-get", [
    "install",
    "-y",
    "-q",
    "-o",
    "DPkg::Lock::Timeout=900",
    "-o",
    `Dir::Cache::Archives=${archives}`,
    "--no-install-recommends",
    ...(options.allowDowngrades ? ["--allow-downgrades"] : []),
    ...packages,
  ], { env: ENV() });
}
