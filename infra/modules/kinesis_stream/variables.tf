variable "name" {
  description = "Name of the Kinesis data stream."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,128}$", var.name))
    error_message = "name must be 1-128 characters from [a-zA-Z0-9_.-] (the Kinesis stream name rules)."
  }
}

variable "shard_count" {
  description = "Number of shards (provisioned capacity mode). Each shard accepts up to 1 MiB/s or 1000 records/s of writes."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number >= 1."
  }
}

variable "retention_hours" {
  description = "How long records stay readable in the stream, in hours (24 to 8760)."
  type        = number
  default     = 24

  validation {
    condition     = var.retention_hours >= 24 && var.retention_hours <= 8760 && floor(var.retention_hours) == var.retention_hours
    error_message = "retention_hours must be a whole number between 24 and 8760."
  }
}

variable "kms_key_id" {
  description = <<-EOT
    ARN of a customer-managed KMS key to encrypt the stream with. Leave null (the default) to use the
    AWS-managed key alias/aws/kinesis, which needs no extra IAM permission for producers. When set, the
    producer policy also allows kms:GenerateDataKey on this key; it must be a key ARN (not an alias)
    because IAM policies grant KMS usage on keys.
  EOT
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_id == null || can(regex("^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$", var.kms_key_id))
    error_message = "kms_key_id must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)."
  }
}

variable "tags" {
  description = "Tags applied to the stream."
  type        = map(string)
  default     = {}
}
