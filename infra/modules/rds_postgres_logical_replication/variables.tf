variable "identifier" {
  description = "Identifier of the RDS instance; also the prefix of the subnet group, security group and parameter group names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,50}[a-z0-9]$", var.identifier)) && !strcontains(var.identifier, "--")
    error_message = "identifier must start with a lowercase letter, use only lowercase letters, digits and single hyphens, not end with a hyphen, and be at most 52 characters."
  }
}

variable "vpc_id" {
  description = "VPC the instance's security group lives in."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123abcd."
  }
}

variable "subnet_ids" {
  description = "Subnets for the DB subnet group: at least two, in at least two availability zones (an RDS requirement). For a publicly accessible instance they must route to an internet gateway."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must list at least two subnet IDs (subnet-0123abcd)."
  }
}

variable "allowed_cidrs" {
  description = "CIDR blocks (IPv4 or IPv6) allowed to connect to PostgreSQL. Nothing else may reach the port."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "allowed_cidrs must list at least one valid CIDR block."
  }

  validation {
    condition     = !anytrue([for c in var.allowed_cidrs : contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "allowed_cidrs must not open the database to the whole internet (0.0.0.0/0 or ::/0)."
  }
}

variable "port" {
  description = "TCP port PostgreSQL listens on."
  type        = number
  default     = 5432
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.micro"
}

variable "engine_version" {
  description = "PostgreSQL engine version (major.minor). Its major version must match parameter_group_family."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.engine_version))
    error_message = "engine_version must be a pinned major.minor version such as 15.12."
  }
}

variable "parameter_group_family" {
  description = "DB parameter group family; must match the engine's major version."
  type        = string
  default     = "postgres15"

  validation {
    condition     = can(regex("^postgres[0-9]+$", var.parameter_group_family))
    error_message = "parameter_group_family must look like postgres15."
  }
}

variable "allocated_storage_gb" {
  description = "Allocated storage in GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage_gb >= 20 && var.allocated_storage_gb <= 65536
    error_message = "allocated_storage_gb must be between 20 and 65536."
  }
}

variable "db_name" {
  description = "Name of the database created with the instance."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must start with a letter and contain only letters, digits and underscores (at most 63 characters)."
  }
}

variable "master_username" {
  description = "Master (admin) user name. Its password is generated."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "rdsadmin", "admin"], lower(var.master_username))
    error_message = "master_username must start with a letter, contain only letters, digits and underscores, and not be a reserved name (postgres, rdsadmin, admin)."
  }
}

variable "max_replication_slots" {
  description = "max_replication_slots server setting."
  type        = number
  default     = 10
}

variable "max_wal_senders" {
  description = "max_wal_senders server setting."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags applied to every resource of the module."
  type        = map(string)
  default     = {}
}
