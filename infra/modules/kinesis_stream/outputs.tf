output "stream_name" {
  description = "Name of the Kinesis data stream."
  value       = aws_kinesis_stream.this.name
}

output "stream_arn" {
  description = "ARN of the Kinesis data stream."
  value       = aws_kinesis_stream.this.arn
}

output "kms_key_id" {
  description = "The KMS key the stream is encrypted with (alias/aws/kinesis unless a customer-managed key was given)."
  value       = local.stream_kms_key_id
}

output "producer_policy_json" {
  description = "IAM policy document (JSON) granting exactly what a producer needs to write to this stream."
  value       = data.aws_iam_policy_document.producer.json
}
