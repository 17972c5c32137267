/**
 * Throwaway TLS material for tests: a CA and a server certificate it signs, and unrelated CAs to
 * play the wrong root, made with the openssl command line. The files go to fresh temporary
 * directories; `cleanup()` removes them.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface ServerCertificate {
  readonly dir: string
  /** PEM of the CA certificate, and its path (for PGSSLROOTCERT). */
  readonly caCert: string
  readonly caCertPath: string
  /** PEM of the server certificate and its private key (for ssl_cert_file / ssl_key_file). */
  readonly serverCert: string
  readonly serverKey: string
  readonly cleanup: () => void
}

export interface CertificateOptions {
  /** The certificate's common name. */
  readonly commonName: string
  /** DNS names in the subjectAltName. */
  readonly dnsNames?: ReadonlyArray<string>
  /** IP addresses in the subjectAltName. */
  readonly ipAddresses?: ReadonlyArray<string>
}

const openssl = (cwd: string, args: ReadonlyArray<string>): void => {
  execFileSync("openssl", [...args], { cwd, stdio: ["ignore", "ignore", "pipe"] })
}

const makeCaIn = (dir: string): void =>
  openssl(dir, [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=cdc test CA",
    "-keyout", "ca.key", "-out", "ca.crt"
  ])

export interface CertificateAuthority {
  /** Path of the CA certificate (for PGSSLROOTCERT). */
  readonly caCertPath: string
  readonly cleanup: () => void
}

/** A CA of its own, with the same name as every test CA but another key: a "wrong" root. */
export const makeCertificateAuthority = (): CertificateAuthority => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-tls-ca-"))
  makeCaIn(dir)
  return { caCertPath: Path.join(dir, "ca.crt"), cleanup: () => Fs.rmSync(dir, { recursive: true, force: true }) }
}

/** Makes a CA and a server certificate signed by it, valid for the given names. */
export const makeServerCertificate = (options: CertificateOptions): ServerCertificate => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-tls-"))
  makeCaIn(dir)
  openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${options.commonName}`, "-keyout", "server.key", "-out", "server.csr"])
  const altNames = [
    ...(options.dnsNames ?? []).map((name) => `DNS:${name}`),
    ...(options.ipAddresses ?? []).map((ip) => `IP:${ip}`)
  ]
  Fs.writeFileSync(
    Path.join(dir, "server.ext"),
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      ...(altNames.length > 0 ? [`subjectAltName=${altNames.join(",")}`] : [])
    ].join("\n") + "\n"
  )
  openssl(dir, [
    "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
    "-extfile", "server.ext", "-out", "server.crt"
  ])
  const read = (name: string) => Fs.readFileSync(Path.join(dir, name), "utf8")
  return {
    dir,
    caCert: read("ca.crt"),
    caCertPath: Path.join(dir, "ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
    cleanup: () => Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** postgresql.conf settings and data-directory files that turn TLS on with this certificate. */
export const postgresTlsSettings = (certificate: ServerCertificate) => ({
  conf: { ssl: "on", ssl_cert_file: "'server.crt'", ssl_key_file: "'server.key'" },
  files: { "server.crt": certificate.serverCert, "server.key": certificate.serverKey }
})
