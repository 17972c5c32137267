variable "aws_region" {
  description = "AWS region to create everything in."
  type        = string
  default     = "us-west-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must be a region code such as us-west-2."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "cdc-lr-dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix)) && !strcontains(var.name_prefix, "--")
    error_message = "name_prefix must be 3-32 characters: lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags applied to every resource (through the provider's default_tags)."
  type        = map(string)
  default = {
    project   = "data-platform"
    component = "cdc-logical-replication"
    env       = "dev"
  }
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach PostgreSQL on 5432, e.g. [\"203.0.113.7/32\"] for your own public IP. Required."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_cidrs must list at least one valid CIDR block."
  }

  validation {
    condition     = !anytrue([for c in var.allowed_cidrs : contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "allowed_cidrs must not open the database to the whole internet (0.0.0.0/0 or ::/0)."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.micro"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS instance class such as db.t3.micro."
  }
}

variable "db_engine_version" {
  description = "Pinned PostgreSQL engine version. Must be a 15.x release: the parameter group is of the postgres15 family."
  type        = string
  default     = "15.12"

  validation {
    condition     = can(regex("^15\\.[0-9]+$", var.db_engine_version))
    error_message = "db_engine_version must be a pinned PostgreSQL 15 minor version such as 15.12."
  }
}

variable "db_allocated_storage_gb" {
  description = "Allocated storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536
    error_message = "db_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "db_name" {
  description = "Name of the database to create."
  type        = string
  default     = "cdc"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must start with a letter and contain only letters, digits and underscores."
  }
}

variable "db_master_username" {
  description = "Master (admin) user name. Its password is generated."
  type        = string
  default     = "cdc_admin"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.db_master_username))
    error_message = "db_master_username must start with a letter and contain only letters, digits and underscores."
  }
}

variable "replication_username" {
  description = "User the service replicates as. Created (or updated) by bootstrap_db.sh with a generated password."
  type        = string
  default     = "cdc_replication"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.replication_username))
    error_message = "replication_username must start with a letter and contain only letters, digits and underscores."
  }
}

variable "kinesis_shard_count" {
  description = "Number of shards of the Kinesis stream."
  type        = number
  default     = 1

  validation {
    condition     = var.kinesis_shard_count >= 1 && floor(var.kinesis_shard_count) == var.kinesis_shard_count
    error_message = "kinesis_shard_count must be a whole number >= 1."
  }
}

variable "kinesis_retention_hours" {
  description = "Kinesis record retention in hours (24 to 8760)."
  type        = number
  default     = 24

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours must be between 24 and 8760."
  }
}

variable "kinesis_kms_key_arn" {
  description = "ARN of a customer-managed KMS key for the stream. Null (default) uses the AWS-managed alias/aws/kinesis; when set, the service policy also gets kms:GenerateDataKey on this key."
  type        = string
  default     = null
}

variable "use_default_vpc" {
  description = "Place the database in the account's default VPC and its default subnets. Set to false to use vpc_id and subnet_ids instead."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC to use when use_default_vpc = false."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be null or look like vpc-0123abcd."
  }
}

variable "subnet_ids" {
  description = "Subnets (at least two, in two AZs, routed to an internet gateway) to use when use_default_vpc = false."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must contain subnet IDs such as subnet-0123abcd."
  }
}

variable "eks_oidc_provider_arn" {
  description = "ARN of an EKS cluster's IAM OIDC provider. When set, an IRSA role carrying the service policy is created for eks_namespace/eks_service_account; null (default) creates none."
  type        = string
  default     = null
}

variable "eks_namespace" {
  description = "Kubernetes namespace of the service account for the IRSA role."
  type        = string
  default     = "cdc"
}

variable "eks_service_account" {
  description = "Kubernetes service account name for the IRSA role."
  type        = string
  default     = "cdc-logical-replication"
}
