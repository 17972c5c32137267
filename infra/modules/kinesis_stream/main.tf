# A provisioned Kinesis data stream, always encrypted at rest, plus the least-privilege IAM policy
# document a producer (the cdc-logical-replication service) needs to write to it.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

locals {
  # The AWS-managed key for Kinesis. Producers need no KMS permission of their own to use it.
  aws_managed_kms_key = "alias/aws/kinesis"

  uses_customer_managed_key = var.kms_key_id != null
  stream_kms_key_id         = local.uses_customer_managed_key ? var.kms_key_id : local.aws_managed_kms_key
}

resource "aws_kinesis_stream" "this" {
  name             = var.name
  shard_count      = var.shard_count
  retention_period = var.retention_hours

  encryption_type = "KMS"
  kms_key_id      = local.stream_kms_key_id

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }

  tags = var.tags
}

# What the service calls: DescribeStreamSummary once at start-up to check the stream, then
# PutRecords for every batch. Nothing else: no reads, no shard management, no wildcard.
data "aws_iam_policy_document" "producer" {
  statement {
    sid    = "WriteRecords"
    effect = "Allow"
    actions = [
      "kinesis:DescribeStreamSummary",
      "kinesis:PutRecords",
    ]
    resources = [aws_kinesis_stream.this.arn]
  }

  # Only a customer-managed key needs an explicit grant; alias/aws/kinesis is usable by any
  # principal that may write to the stream.
  dynamic "statement" {
    for_each = local.uses_customer_managed_key ? [var.kms_key_id] : []

    content {
      sid       = "EncryptWithStreamKey"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}
