/**
 * The Terraform under infra/ cannot be planned here (no terraform binary, no AWS), so this suite
 * parses every .tf file as HCL and checks the contract the service, its integration tests and
 * the docs rely on: stack variables and defaults, outputs, the logical-replication settings, the
 * dev-friendly instance settings, module wiring, and the least-privilege IAM policy.
 */
import { parse } from "@cdktf/hcl2json"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"

const TIMEOUT = 60_000

const repoRoot = Path.resolve(import.meta.dirname, "..", "..")
const infraDir = Path.join(repoRoot, "infra")
const stackDir = Path.join(infraDir, "stacks", "cdc_logical_replication_dev")
const modulesDir = Path.join(infraDir, "modules")

type Json = any // hcl2json output: plain JSON whose shape follows the HCL

/** Every block of a directory's .tf files, merged: { variable: { name: [body, ...] }, ... }. */
interface TfDir {
  readonly dir: string
  readonly files: ReadonlyArray<string>
  readonly config: Record<string, Json>
}

const listTfFiles = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = Path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === ".terraform" ? [] : listTfFiles(full)
    return entry.name.endsWith(".tf") ? [full] : []
  })

/** Merges parsed files the way Terraform treats a module: one namespace over all its .tf files. */
const mergeInto = (target: Record<string, Json>, parsed: Record<string, Json>): void => {
  for (const [kind, value] of Object.entries(parsed)) {
    if (Array.isArray(value)) {
      // locals, terraform, ...: lists of bodies
      target[kind] = [...(target[kind] ?? []), ...value]
    } else if (kind === "resource" || kind === "data") {
      target[kind] ??= {}
      for (const [type, byName] of Object.entries(value as Record<string, Json>)) {
        target[kind][type] ??= {}
        for (const [name, bodies] of Object.entries(byName as Record<string, Json>)) {
          if (target[kind][type][name] !== undefined) throw new Error(`duplicate ${kind} ${type}.${name}`)
          target[kind][type][name] = bodies
        }
      }
    } else {
      target[kind] ??= {}
      for (const [name, bodies] of Object.entries(value as Record<string, Json>)) {
        if (target[kind][name] !== undefined) throw new Error(`duplicate ${kind} ${name}`)
        target[kind][name] = bodies
      }
    }
  }
}

const parsedFiles = new Map<string, Record<string, Json>>()

const loadDir = (dir: string): TfDir => {
  const files = Fs.readdirSync(dir).filter((f) => f.endsWith(".tf")).map((f) => Path.join(dir, f))
  const config: Record<string, Json> = {}
  for (const file of files) {
    const parsed = parsedFiles.get(file)
    if (parsed === undefined) throw new Error(`${file} was not parsed`)
    mergeInto(config, parsed)
  }
  return { dir, files, config }
}

/** The one body of a block that must appear exactly once. */
const single = (bodies: Json, what: string): Json => {
  expect(Array.isArray(bodies), `${what} exists`).toBe(true)
  expect(bodies, `${what} is declared once`).toHaveLength(1)
  return bodies[0]
}

const variables = (d: TfDir): Record<string, Json> =>
  Object.fromEntries(Object.entries(d.config.variable ?? {}).map(([k, v]) => [k, single(v, `variable ${k}`)]))
const outputs = (d: TfDir): Record<string, Json> =>
  Object.fromEntries(Object.entries(d.config.output ?? {}).map(([k, v]) => [k, single(v, `output ${k}`)]))
const resource = (d: TfDir, type: string, name: string): Json =>
  single(d.config.resource?.[type]?.[name], `resource ${type}.${name} in ${Path.relative(repoRoot, d.dir)}`)
const dataSource = (d: TfDir, type: string, name: string): Json =>
  single(d.config.data?.[type]?.[name], `data ${type}.${name} in ${Path.relative(repoRoot, d.dir)}`)
const moduleCalls = (d: TfDir): Record<string, Json> =>
  Object.fromEntries(Object.entries(d.config.module ?? {}).map(([k, v]) => [k, single(v, `module ${k}`)]))

/** Every string inside a parsed value, depth first. */
const strings = (value: Json): Array<string> => {
  if (typeof value === "string") return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(strings)
  return []
}

/** `module.NAME.OUTPUT` references (also `module.NAME[0].OUTPUT` and `module.NAME[*].OUTPUT`). */
const moduleOutputRefs = (value: Json): Array<{ module: string; output: string }> =>
  strings(value).flatMap((s) =>
    [...s.matchAll(/\bmodule\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?\.([A-Za-z0-9_-]+)/g)].map((m) => ({ module: m[1]!, output: m[2]! }))
  )

/** Module arguments that are Terraform meta-arguments, not the module's variables. */
const META_ARGUMENTS = new Set(["source", "version", "count", "for_each", "providers", "depends_on"])

let stack: TfDir
const modules = new Map<string, TfDir>()

beforeAll(async () => {
  for (const file of listTfFiles(infraDir)) {
    parsedFiles.set(file, await parse(file, Fs.readFileSync(file, "utf8")))
  }
  stack = loadDir(stackDir)
  for (const name of Fs.readdirSync(modulesDir)) modules.set(name, loadDir(Path.join(modulesDir, name)))
}, TIMEOUT)

describe("infra layout", () => {
  it("has the required files, and every .tf file under infra/ parses as HCL", () => {
    const required = [
      "README.md",
      "modules/kinesis_stream/main.tf",
      "modules/kinesis_stream/variables.tf",
      "modules/kinesis_stream/outputs.tf",
      "modules/rds_postgres_logical_replication/main.tf",
      "modules/rds_postgres_logical_replication/variables.tf",
      "modules/rds_postgres_logical_replication/outputs.tf",
      "modules/eks_irsa_role/main.tf",
      "modules/eks_irsa_role/variables.tf",
      "modules/eks_irsa_role/outputs.tf",
      "stacks/cdc_logical_replication_dev/README.md",
      "stacks/cdc_logical_replication_dev/versions.tf",
      "stacks/cdc_logical_replication_dev/main.tf",
      "stacks/cdc_logical_replication_dev/variables.tf",
      "stacks/cdc_logical_replication_dev/outputs.tf",
      "stacks/cdc_logical_replication_dev/bootstrap_db.sh"
    ]
    for (const file of required) expect(Fs.existsSync(Path.join(infraDir, file)), file).toBe(true)
    expect(parsedFiles.size).toBeGreaterThanOrEqual(13)
    for (const [file, parsed] of parsedFiles) expect(Object.keys(parsed).length, `${file} declares something`).toBeGreaterThan(0)
  }, TIMEOUT)

  it("pins Terraform and the providers the stack uses", () => {
    const terraform = single(stack.config.terraform, "terraform block of the stack")
    expect(terraform.required_version).toMatch(/^>=\s*1\.\d+/)
    const providers = single(terraform.required_providers, "required_providers")
    const expectedProviders: ReadonlyArray<readonly [string, string]> = [["aws", "hashicorp/aws"], ["random", "hashicorp/random"], ["null", "hashicorp/null"]]
    for (const [name, source] of expectedProviders) {
      expect(providers[name]?.source, name).toBe(source)
      expect(providers[name]?.version, `${name} version constraint`).toMatch(/\d/)
    }
    const aws = single(stack.config.provider?.aws, "provider aws")
    expect(aws.region).toBe("${var.aws_region}")
    expect(single(aws.default_tags, "default_tags").tags).toBe("${var.tags}")
  }, TIMEOUT)

  it(".gitignore keeps Terraform working files, state and tfvars out of git, but not the lock file", () => {
    const lines = Fs.readFileSync(Path.join(repoRoot, ".gitignore"), "utf8").split("\n").map((l) => l.trim())
    for (const pattern of [".terraform/", "terraform.tfstate*", "*.tfvars", "*.tfvars.json", "crash.log", "node_modules/", "coverage/", "*.log"]) {
      expect(lines, pattern).toContain(pattern)
    }
    expect(lines.some((l) => !l.startsWith("#") && l.includes(".terraform.lock.hcl"))).toBe(false)
    expect(lines.some((l) => !l.startsWith("#") && l.startsWith("bench"))).toBe(false)
  }, TIMEOUT)
})

describe("stack variables", () => {
  const expectedDefaults: Record<string, unknown> = {
    aws_region: "us-west-2",
    name_prefix: "cdc-lr-dev",
    tags: { project: "data-platform", component: "cdc-logical-replication", env: "dev" },
    db_instance_class: "db.t3.micro",
    db_engine_version: "15.12",
    db_allocated_storage_gb: 20,
    db_name: "cdc",
    db_master_username: "cdc_admin",
    replication_username: "cdc_replication",
    kinesis_shard_count: 1,
    kinesis_retention_hours: 24,
    use_default_vpc: true,
    vpc_id: null,
    subnet_ids: [],
    kinesis_kms_key_arn: null,
    eks_oidc_provider_arn: null
  }

  it("declares every variable with its default", () => {
    const vars = variables(stack)
    for (const [name, value] of Object.entries(expectedDefaults)) {
      expect(vars[name], `variable ${name}`).toBeDefined()
      expect(Object.hasOwn(vars[name], "default"), `${name} has a default`).toBe(true)
      expect(vars[name].default, `default of ${name}`).toEqual(value)
      expect(vars[name].description, `${name} is described`).toEqual(expect.any(String))
    }
  }, TIMEOUT)

  it("requires allowed_cidrs (no default) and validates it", () => {
    const v = variables(stack).allowed_cidrs
    expect(v).toBeDefined()
    expect(Object.hasOwn(v, "default")).toBe(false)
    expect(v.type).toBe("${list(string)}")
    const conditions = (v.validation ?? []).map((x: Json) => x.condition as string)
    expect(conditions.some((c: string) => c.includes("cidrhost"))).toBe(true)
    expect(conditions.some((c: string) => c.includes("0.0.0.0/0"))).toBe(true)
  }, TIMEOUT)

  it("validates the values that would otherwise fail late in AWS", () => {
    const vars = variables(stack)
    for (const name of ["aws_region", "name_prefix", "allowed_cidrs", "db_engine_version", "db_allocated_storage_gb", "replication_username", "kinesis_shard_count", "kinesis_retention_hours", "vpc_id", "subnet_ids"]) {
      expect((vars[name].validation ?? []).length, `${name} has a validation block`).toBeGreaterThan(0)
    }
    // the parameter group is of the postgres15 family, so the engine version must be 15.x
    expect(vars.db_engine_version.validation[0].condition).toContain("^15\\\\.")
  }, TIMEOUT)

  it("every variable the stack reads is declared, and every declared variable is used", () => {
    const declared = new Set(Object.keys(variables(stack)))
    const used = new Set(
      Object.entries(stack.config)
        .filter(([kind]) => kind !== "variable")
        .flatMap(([, v]) => strings(v))
        .flatMap((s) => [...s.matchAll(/\bvar\.([A-Za-z0-9_]+)/g)].map((m) => m[1]!))
    )
    for (const name of used) expect(declared.has(name), `var.${name} is declared`).toBe(true)
    for (const name of declared) expect(used.has(name), `var.${name} is used`).toBe(true)
  }, TIMEOUT)
})

describe("stack outputs", () => {
  const expected = [
    "pg_host",
    "pg_port",
    "pg_database",
    "pg_master_user",
    "pg_master_password",
    "pg_replication_user",
    "pg_replication_password",
    "kinesis_stream_name",
    "kinesis_stream_arn",
    "aws_region",
    "env_exports"
  ]

  it("declares every output; only the two passwords are sensitive", () => {
    const outs = outputs(stack)
    for (const name of expected) expect(outs[name], `output ${name}`).toBeDefined()
    for (const [name, out] of Object.entries(outs)) {
      const sensitive = name === "pg_master_password" || name === "pg_replication_password"
      expect(out.sensitive === true, `${name} sensitive=${sensitive}`).toBe(sensitive)
    }
    expect(outs.pg_master_password.value).toBe("${module.postgres.master_password}")
    expect(outs.pg_replication_password.value).toBe("${random_password.replication.result}")
    expect(outs.kinesis_stream_arn.value).toBe("${module.kinesis.stream_arn}")
  }, TIMEOUT)

  it("env_exports names every variable the service and tests read, with no secret in it", () => {
    const text: string = outputs(stack).env_exports.value
    for (const name of ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "AWS_REGION", "KINESIS_STREAM"]) {
      expect(text).toMatch(new RegExp(`^export ${name}=`, "m"))
    }
    // the password line only says which output to read
    expect(text).toMatch(/^export PGPASSWORD="\$\(terraform output -raw pg_replication_password\)"$/m)
    expect(text).not.toMatch(/password\b[^)]*\}|random_password|master_password\}/)
    // every variable name in it is one the service's configuration actually reads
    const serviceConfig = Path.join(repoRoot, "src", "config", "ServiceConfig.ts")
    if (Fs.existsSync(serviceConfig)) {
      const source = Fs.readFileSync(serviceConfig, "utf8")
      for (const m of text.matchAll(/^export ([A-Z_]+)=/gm)) expect(source, `${m[1]} is read by the service`).toContain(`"${m[1]}"`)
    }
  }, TIMEOUT)
})

describe("PostgreSQL module", () => {
  const rds = () => modules.get("rds_postgres_logical_replication")!

  it("enables logical replication in a postgres15 parameter group", () => {
    const pg = resource(rds(), "aws_db_parameter_group", "this")
    expect(pg.family).toBe("${var.parameter_group_family}")
    expect(variables(rds()).parameter_group_family.default).toBe("postgres15")
    const vars = variables(rds())
    const resolve = (value: string): string => {
      const m = /^\$\{tostring\(var\.([a-z_]+)\)\}$/.exec(value)
      return m ? String(vars[m[1]!].default) : value
    }
    const params = Object.fromEntries(
      (pg.parameter as Array<Json>).map((p) => [p.name, { value: resolve(p.value), apply_method: p.apply_method }])
    )
    expect(params).toEqual({
      "rds.logical_replication": { value: "1", apply_method: "pending-reboot" },
      max_replication_slots: { value: "10", apply_method: "pending-reboot" },
      max_wal_senders: { value: "10", apply_method: "pending-reboot" }
    })
  }, TIMEOUT)

  it("creates a dev-friendly instance using that parameter group", () => {
    const db = resource(rds(), "aws_db_instance", "this")
    expect(db).toMatchObject({
      engine: "postgres",
      engine_version: "${var.engine_version}",
      instance_class: "${var.instance_class}",
      publicly_accessible: true,
      multi_az: false,
      backup_retention_period: 0,
      skip_final_snapshot: true,
      deletion_protection: false,
      apply_immediately: true,
      password: "${random_password.master.result}",
      parameter_group_name: "${aws_db_parameter_group.this.name}",
      db_subnet_group_name: "${aws_db_subnet_group.this.name}",
      vpc_security_group_ids: ["${aws_security_group.this.id}"],
      storage_encrypted: true
    })
    expect(resource(rds(), "random_password", "master").length).toBeGreaterThanOrEqual(16)
    expect(resource(rds(), "aws_db_subnet_group", "this").subnet_ids).toBe("${var.subnet_ids}")
  }, TIMEOUT)

  it("opens 5432 only to allowed_cidrs and allows all egress", () => {
    const sg = resource(rds(), "aws_security_group", "this")
    expect(variables(rds()).port.default).toBe(5432)
    expect(sg.ingress).toHaveLength(1)
    const ingress = sg.ingress[0]
    expect(ingress).toMatchObject({ from_port: "${var.port}", to_port: "${var.port}", protocol: "tcp" })
    expect(ingress.cidr_blocks).toBe("${local.allowed_ipv4_cidrs}")
    expect(ingress.ipv6_cidr_blocks).toBe("${local.allowed_ipv6_cidrs}")
    const locals = Object.assign({}, ...(rds().config.locals ?? []))
    expect(locals.allowed_ipv4_cidrs).toContain("var.allowed_cidrs")
    expect(locals.allowed_ipv6_cidrs).toContain("var.allowed_cidrs")
    expect(sg.egress).toEqual([
      expect.objectContaining({ from_port: 0, to_port: 0, protocol: "-1", cidr_blocks: ["0.0.0.0/0"] })
    ])
  }, TIMEOUT)
})

describe("stack resources", () => {
  it("discovers the default VPC and its subnets unless vpc_id/subnet_ids are given", () => {
    const vpc = dataSource(stack, "aws_vpc", "selected")
    expect(vpc.default).toBe("${var.use_default_vpc ? true : null}")
    expect(vpc.id).toBe("${var.use_default_vpc ? null : var.vpc_id}")
    const subnets = dataSource(stack, "aws_subnets", "default")
    expect(subnets.count).toBe("${var.use_default_vpc ? 1 : 0}")
    const locals = Object.assign({}, ...(stack.config.locals ?? []))
    expect(locals.subnet_ids).toBe("${var.use_default_vpc ? data.aws_subnets.default[0].ids : var.subnet_ids}")
    const postgres = moduleCalls(stack).postgres
    expect(postgres.vpc_id).toBe("${local.vpc_id}")
    expect(postgres.subnet_ids).toBe("${local.subnet_ids}")
    expect(postgres.allowed_cidrs).toBe("${var.allowed_cidrs}")
  }, TIMEOUT)

  it("creates the Kinesis stream with the shard count, retention and KMS encryption asked for", () => {
    const kinesisModule = modules.get("kinesis_stream")!
    const stream = resource(kinesisModule, "aws_kinesis_stream", "this")
    expect(stream).toMatchObject({
      shard_count: "${var.shard_count}",
      retention_period: "${var.retention_hours}",
      encryption_type: "KMS",
      kms_key_id: "${local.stream_kms_key_id}"
    })
    const locals = Object.assign({}, ...(kinesisModule.config.locals ?? []))
    expect(locals.aws_managed_kms_key).toBe("alias/aws/kinesis")
    expect(locals.stream_kms_key_id).toBe("${local.uses_customer_managed_key ? var.kms_key_id : local.aws_managed_kms_key}")
    expect(variables(kinesisModule).kms_key_id.default).toBeNull()
    const call = moduleCalls(stack).kinesis
    expect(call).toMatchObject({
      shard_count: "${var.kinesis_shard_count}",
      retention_hours: "${var.kinesis_retention_hours}",
      kms_key_id: "${var.kinesis_kms_key_arn}"
    })
  }, TIMEOUT)

  it("bootstraps the database with a null_resource whose secrets travel only in the environment", () => {
    const bootstrap = resource(stack, "null_resource", "bootstrap_db")
    const exec = single(bootstrap.provisioner?.["local-exec"], "local-exec provisioner")
    expect(exec.interpreter).toEqual(["bash"])
    expect(exec.command).toBe("${path.module}/bootstrap_db.sh")
    expect(exec.environment).toEqual({
      PGHOST: "${module.postgres.address}",
      PGPORT: "${tostring(module.postgres.port)}",
      PGDATABASE: "${module.postgres.db_name}",
      PGUSER: "${module.postgres.master_username}",
      PGPASSWORD: "${module.postgres.master_password}",
      PGSSLMODE: "require",
      REPLICATION_USERNAME: "${var.replication_username}",
      REPLICATION_PASSWORD: "${random_password.replication.result}"
    })
    // re-run when the instance is replaced, the user or its password changes, or the script changes
    expect(Object.keys(bootstrap.triggers).sort()).toEqual(
      ["instance_resource_id", "password_sha256", "replication_username", "script_sha256"]
    )
    expect(bootstrap.triggers.instance_resource_id).toBe("${module.postgres.instance_resource_id}")
    // the replication outputs are only meaningful once the user exists
    expect(outputs(stack).pg_replication_password.depends_on).toEqual(["${null_resource.bootstrap_db}"])
  }, TIMEOUT)
})

describe("module wiring", () => {
  it("every module the stack calls exists; every input is declared, every required input is passed", () => {
    const calls = moduleCalls(stack)
    expect(Object.keys(calls).sort()).toEqual(["eks_irsa_role", "kinesis", "postgres"])
    for (const [callName, call] of Object.entries(calls)) {
      const target = Path.resolve(stackDir, call.source)
      expect(Fs.existsSync(target), `module ${callName} source ${call.source}`).toBe(true)
      const mod = loadDir(target)
      const declared = variables(mod)
      const passed = Object.keys(call).filter((k) => !META_ARGUMENTS.has(k))
      for (const input of passed) expect(declared[input], `module ${callName}: input ${input} is a variable of ${call.source}`).toBeDefined()
      for (const [name, v] of Object.entries(declared)) {
        if (!Object.hasOwn(v, "default")) expect(passed, `module ${callName}: required variable ${name} is passed`).toContain(name)
      }
    }
  }, TIMEOUT)

  it("every module.X.Y the stack reads is an output of module X", () => {
    const calls = moduleCalls(stack)
    const refs = moduleOutputRefs(stack.config)
    expect(refs.length).toBeGreaterThan(10)
    for (const { module, output } of refs) {
      expect(calls[module], `module ${module} is called`).toBeDefined()
      const mod = loadDir(Path.resolve(stackDir, calls[module].source))
      expect(outputs(mod)[output], `module.${module}.${output} is an output of ${calls[module].source}`).toBeDefined()
    }
  }, TIMEOUT)

  it("every module's own var.X references are declared", () => {
    for (const [name, mod] of modules) {
      const declared = new Set(Object.keys(variables(mod)))
      const used = Object.entries(mod.config)
        .filter(([kind]) => kind !== "variable")
        .flatMap(([, v]) => strings(v))
        .flatMap((s) => [...s.matchAll(/\bvar\.([A-Za-z0-9_]+)/g)].map((m) => m[1]!))
      for (const v of used) expect(declared.has(v), `${name}: var.${v} is declared`).toBe(true)
    }
  }, TIMEOUT)
})

describe("IAM", () => {
  /** The statements of the producer policy document, static and dynamic ones alike. */
  const producerStatements = () => {
    const doc = dataSource(modules.get("kinesis_stream")!, "aws_iam_policy_document", "producer")
    const fixed = (doc.statement ?? []) as Array<Json>
    // hcl2json renders `dynamic "statement" { ... }` as { dynamic: { statement: [ ... ] } }
    const dynamicBlocks: Array<Json> = Array.isArray(doc.dynamic) ? doc.dynamic : [doc.dynamic ?? {}]
    const dynamic = dynamicBlocks.flatMap((d) => (d.statement ?? []) as Array<Json>)
    expect(dynamicBlocks.flatMap((d) => Object.keys(d)).filter((k) => k !== "statement")).toEqual([])
    return { fixed, dynamic }
  }

  it("grants exactly kinesis:PutRecords and kinesis:DescribeStreamSummary on the stream, and kms:GenerateDataKey only for a customer-managed key", () => {
    const { fixed, dynamic } = producerStatements()
    expect(fixed).toHaveLength(1)
    expect(fixed[0].effect ?? "Allow").toBe("Allow")
    expect([...fixed[0].actions].sort()).toEqual(["kinesis:DescribeStreamSummary", "kinesis:PutRecords"])
    expect(fixed[0].resources).toEqual(["${aws_kinesis_stream.this.arn}"])

    expect(dynamic).toHaveLength(1)
    expect(dynamic[0].for_each).toBe("${local.uses_customer_managed_key ? [var.kms_key_id] : []}")
    const content = single(dynamic[0].content, "dynamic statement content")
    expect(content.actions).toEqual(["kms:GenerateDataKey"])
    expect(content.resources).toEqual(["${statement.value}"])
    const locals = Object.assign({}, ...(modules.get("kinesis_stream")!.config.locals ?? []))
    expect(locals.uses_customer_managed_key).toBe("${var.kms_key_id != null}")

    // nothing else anywhere: no wildcard, no other action
    const allActions = [...fixed, content].flatMap((s) => s.actions as Array<string>)
    expect(allActions.sort()).toEqual(["kinesis:DescribeStreamSummary", "kinesis:PutRecords", "kms:GenerateDataKey"])
    for (const s of [...fixed, content]) {
      expect(s.not_actions).toBeUndefined()
      for (const r of s.resources as Array<string>) expect(r).not.toContain("*")
    }
  }, TIMEOUT)

  it("the stack's service policy is that document, and the IRSA role is optional and carries it", () => {
    const policy = resource(stack, "aws_iam_policy", "service")
    expect(policy.policy).toBe("${module.kinesis.producer_policy_json}")
    expect(outputs(modules.get("kinesis_stream")!).producer_policy_json.value).toBe("${data.aws_iam_policy_document.producer.json}")

    const irsa = moduleCalls(stack).eks_irsa_role
    expect(irsa.count).toBe("${var.eks_oidc_provider_arn == null ? 0 : 1}")
    expect(irsa.policy_arns).toEqual({ kinesis_producer: "${aws_iam_policy.service.arn}" })
    expect(outputs(stack).eks_irsa_role_arn.value).toBe("${one(module.eks_irsa_role[*].role_arn)}")
  }, TIMEOUT)

  it("the IRSA role trusts only the given service account through the cluster's OIDC provider", () => {
    const mod = modules.get("eks_irsa_role")!
    const trust = dataSource(mod, "aws_iam_policy_document", "trust")
    const statement = single(trust.statement, "trust statement")
    expect(statement.actions).toEqual(["sts:AssumeRoleWithWebIdentity"])
    expect(statement.principals).toEqual([{ type: "Federated", identifiers: ["${var.oidc_provider_arn}"] }])
    const conditions = Object.fromEntries((statement.condition as Array<Json>).map((c) => [c.variable, c]))
    expect(conditions["${local.oidc_issuer}:sub"]).toMatchObject({
      test: "StringEquals",
      values: ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    })
    expect(conditions["${local.oidc_issuer}:aud"]).toMatchObject({ test: "StringEquals", values: ["sts.amazonaws.com"] })
    expect(resource(mod, "aws_iam_role", "this").assume_role_policy).toBe("${data.aws_iam_policy_document.trust.json}")
    expect(resource(mod, "aws_iam_role_policy_attachment", "this").for_each).toBe("${var.policy_arns}")
  }, TIMEOUT)
})

describe("docs", () => {
  it("explain apply, env exports, the integration test, destroy, cost and the lock file", () => {
    const infraReadme = Fs.readFileSync(Path.join(infraDir, "README.md"), "utf8")
    const stackReadme = Fs.readFileSync(Path.join(stackDir, "README.md"), "utf8")
    for (const [name, text] of [["infra/README.md", infraReadme], ["stack README.md", stackReadme]] as const) {
      for (const needle of ["terraform apply", "terraform output -json", "jq", "RUN_INTEGRATION_TESTS=1 npm test -- test/integration", "terraform destroy", "allowed_cidrs"]) {
        expect(text, `${name} mentions ${needle}`).toContain(needle)
      }
      expect(text.toLowerCase(), `${name} has a cost note`).toContain("cost")
    }
    expect(infraReadme).toContain(".terraform.lock.hcl")
  }, TIMEOUT)
})
