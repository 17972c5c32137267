output "pg_host" {
  description = "PostgreSQL host name (PGHOST)."
  value       = module.postgres.address
}

output "pg_port" {
  description = "PostgreSQL port (PGPORT)."
  value       = module.postgres.port
}

output "pg_database" {
  description = "Database name (PGDATABASE)."
  value       = module.postgres.db_name
}

output "pg_master_user" {
  description = "Master (admin) user; for creating test tables and publications."
  value       = module.postgres.master_username
}

output "pg_master_password" {
  description = "Master password. Read it with: terraform output -raw pg_master_password"
  value       = module.postgres.master_password
  sensitive   = true
}

output "pg_replication_user" {
  description = "User the service replicates as (PGUSER)."
  value       = var.replication_username
  depends_on  = [null_resource.bootstrap_db]
}

output "pg_replication_password" {
  description = "Replication user's password (PGPASSWORD). Read it with: terraform output -raw pg_replication_password"
  value       = random_password.replication.result
  sensitive   = true
  depends_on  = [null_resource.bootstrap_db]
}

output "kinesis_stream_name" {
  description = "Kinesis stream name (KINESIS_STREAM)."
  value       = module.kinesis.stream_name
}

output "kinesis_stream_arn" {
  description = "Kinesis stream ARN."
  value       = module.kinesis.stream_arn
}

output "aws_region" {
  description = "Region of the stack (AWS_REGION)."
  value       = var.aws_region
}

output "service_policy_arn" {
  description = "ARN of the least-privilege IAM policy for the service (attach it to whatever runs the service)."
  value       = aws_iam_policy.service.arn
}

output "eks_irsa_role_arn" {
  description = "ARN of the IRSA role for the service account, or null when eks_oidc_provider_arn is not set."
  value       = one(module.eks_irsa_role[*].role_arn)
}

# Not sensitive: the password line only names the output to read, so this block can be printed
# and eval'd from this directory. The service and the integration tests read exactly these names.
output "env_exports" {
  description = "Shell exports for the service and the integration tests. Run from this directory: eval \"$(terraform output -raw env_exports)\""
  value       = <<-EOT
    export PGHOST='${module.postgres.address}'
    export PGPORT='${module.postgres.port}'
    export PGDATABASE='${module.postgres.db_name}'
    export PGUSER='${var.replication_username}'
    export PGPASSWORD="$(terraform output -raw pg_replication_password)"
    export PGSSLMODE='require'
    export AWS_REGION='${var.aws_region}'
    export KINESIS_STREAM='${module.kinesis.stream_name}'
  EOT
}
