# Dev infrastructure for the cdc-logical-replication service's opt-in integration tests:
#   - an RDS for PostgreSQL 15 instance with logical replication on, reachable only from allowed_cidrs,
#   - a dedicated replication user, created by bootstrap_db.sh once the instance is up,
#   - a Kinesis data stream the service writes to,
#   - a least-privilege IAM policy for the service, and optionally an EKS IRSA role carrying it.

# ---------------------------------------------------------------------------------------------
# Network: the account's default VPC and its default subnets, unless vpc_id/subnet_ids are given.

data "aws_vpc" "selected" {
  default = var.use_default_vpc ? true : null
  id      = var.use_default_vpc ? null : var.vpc_id

  lifecycle {
    precondition {
      condition     = var.use_default_vpc || (var.vpc_id != null && length(var.subnet_ids) >= 2)
      error_message = "With use_default_vpc = false, set vpc_id and at least two subnet_ids (in two availability zones)."
    }
  }
}

data "aws_subnets" "default" {
  count = var.use_default_vpc ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.selected.id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

locals {
  vpc_id     = data.aws_vpc.selected.id
  subnet_ids = var.use_default_vpc ? data.aws_subnets.default[0].ids : var.subnet_ids
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

module "postgres" {
  source = "../../modules/rds_postgres_logical_replication"

  identifier           = "${var.name_prefix}-pg"
  vpc_id               = local.vpc_id
  subnet_ids           = local.subnet_ids
  allowed_cidrs        = var.allowed_cidrs
  instance_class       = var.db_instance_class
  engine_version       = var.db_engine_version
  allocated_storage_gb = var.db_allocated_storage_gb
  db_name              = var.db_name
  master_username      = var.db_master_username
}

resource "random_password" "replication" {
  length      = 32
  special     = false
  min_upper   = 2
  min_lower   = 2
  min_numeric = 2
}

# Creates or updates the replication user once the instance is available (Terraform waits for
# the instance to be "available" before anything that reads its address runs). Re-runs when the
# instance is replaced, the user or password changes, or the script changes. Every value reaches
# the script through the environment, none on a command line.
resource "null_resource" "bootstrap_db" {
  triggers = {
    instance_resource_id = module.postgres.instance_resource_id
    replication_username = var.replication_username
    password_sha256      = sha256(random_password.replication.result)
    script_sha256        = filesha256("${path.module}/bootstrap_db.sh")
  }

  provisioner "local-exec" {
    interpreter = ["bash"]
    command     = "${path.module}/bootstrap_db.sh"

    environment = {
      PGHOST               = module.postgres.address
      PGPORT               = tostring(module.postgres.port)
      PGDATABASE           = module.postgres.db_name
      PGUSER               = module.postgres.master_username
      PGPASSWORD           = module.postgres.master_password
      PGSSLMODE            = "require"
      REPLICATION_USERNAME = var.replication_username
      REPLICATION_PASSWORD = random_password.replication.result
    }
  }

  lifecycle {
    precondition {
      condition     = lower(var.replication_username) != lower(var.db_master_username)
      error_message = "replication_username must differ from db_master_username."
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Kinesis

module "kinesis" {
  source = "../../modules/kinesis_stream"

  name            = "${var.name_prefix}-changes"
  shard_count     = var.kinesis_shard_count
  retention_hours = var.kinesis_retention_hours
  kms_key_id      = var.kinesis_kms_key_arn
}

# ---------------------------------------------------------------------------------------------
# IAM: what the service needs to publish, and nothing more.

resource "aws_iam_policy" "service" {
  name        = "${var.name_prefix}-service-kinesis-producer"
  description = "cdc-logical-replication: write change records to ${module.kinesis.stream_name}"
  policy      = module.kinesis.producer_policy_json
}

module "eks_irsa_role" {
  source = "../../modules/eks_irsa_role"
  count  = var.eks_oidc_provider_arn == null ? 0 : 1

  name              = "${var.name_prefix}-service"
  oidc_provider_arn = var.eks_oidc_provider_arn
  namespace         = var.eks_namespace
  service_account   = var.eks_service_account
  policy_arns       = { kinesis_producer = aws_iam_policy.service.arn }
}
