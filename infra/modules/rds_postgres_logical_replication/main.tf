# A small, disposable RDS for PostgreSQL instance with logical replication turned on, reachable on
# its port only from the given CIDR blocks. Tuned for a developer's integration tests, not for
# production: one AZ, no backups, no final snapshot, no deletion protection.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }
}

locals {
  allowed_ipv4_cidrs = [for c in var.allowed_cidrs : c if !strcontains(c, ":")]
  allowed_ipv6_cidrs = [for c in var.allowed_cidrs : c if strcontains(c, ":")]
}

# Letters and digits only: long enough to be strong, and safe to paste into a shell, a URL or a
# libpq connection string without escaping.
resource "random_password" "master" {
  length      = 32
  special     = false
  min_upper   = 2
  min_lower   = 2
  min_numeric = 2
}

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.identifier}-"
  description = "Subnets for ${var.identifier}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "this" {
  name_prefix = "${var.identifier}-pg-"
  description = "PostgreSQL access to ${var.identifier} from allowed CIDRs only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.identifier}-pg" })

  ingress {
    description      = "PostgreSQL from allowed CIDRs"
    from_port        = var.port
    to_port          = var.port
    protocol         = "tcp"
    cidr_blocks      = local.allowed_ipv4_cidrs
    ipv6_cidr_blocks = local.allowed_ipv6_cidrs
  }

  egress {
    description      = "All outbound"
    from_port        = 0
    to_port          = 0
    protocol         = "-1"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# All three settings are static: they take effect when the instance (re)starts. A new instance
# starts with them; after changing one on an existing instance, reboot it.
resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.identifier}-"
  family      = var.parameter_group_family
  description = "Logical replication for ${var.identifier}"
  tags        = var.tags

  parameter {
    name         = "rds.logical_replication"
    value        = "1"
    apply_method = "pending-reboot"
  }

  parameter {
    name         = "max_replication_slots"
    value        = tostring(var.max_replication_slots)
    apply_method = "pending-reboot"
  }

  parameter {
    name         = "max_wal_senders"
    value        = tostring(var.max_wal_senders)
    apply_method = "pending-reboot"
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = startswith(var.engine_version, "${trimprefix(var.parameter_group_family, "postgres")}.")
      error_message = "engine_version ${var.engine_version} does not belong to parameter group family ${var.parameter_group_family}."
    }
  }
}

resource "aws_db_instance" "this" {
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage = var.allocated_storage_gb
  storage_type      = "gp3"
  storage_encrypted = true

  db_name  = var.db_name
  username = var.master_username
  password = random_password.master.result
  port     = var.port

  parameter_group_name   = aws_db_parameter_group.this.name
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]

  # Dev-friendly: reachable from a laptop (only from allowed_cidrs), cheap, and easy to throw away.
  publicly_accessible        = true
  multi_az                   = false
  backup_retention_period    = 0
  skip_final_snapshot        = true
  deletion_protection        = false
  apply_immediately          = true
  auto_minor_version_upgrade = false # the version is pinned; an upgrade behind Terraform's back would show as drift

  performance_insights_enabled = false
  copy_tags_to_snapshot        = true
  tags                         = var.tags
}
