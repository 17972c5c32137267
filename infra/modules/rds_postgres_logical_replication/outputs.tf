output "address" {
  description = "DNS name of the instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port PostgreSQL listens on."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "Name of the database created with the instance."
  value       = aws_db_instance.this.db_name
}

output "master_username" {
  description = "Master user name."
  value       = aws_db_instance.this.username
}

output "master_password" {
  description = "Generated master password."
  value       = random_password.master.result
  sensitive   = true
}

output "instance_identifier" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "instance_resource_id" {
  description = "RDS resource ID; changes only when the instance is replaced."
  value       = aws_db_instance.this.resource_id
}

output "instance_arn" {
  description = "ARN of the RDS instance."
  value       = aws_db_instance.this.arn
}

output "security_group_id" {
  description = "Security group guarding the PostgreSQL port."
  value       = aws_security_group.this.id
}

output "parameter_group_name" {
  description = "Name of the parameter group enabling logical replication."
  value       = aws_db_parameter_group.this.name
}
