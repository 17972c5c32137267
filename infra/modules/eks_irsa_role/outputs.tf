output "role_arn" {
  description = "ARN of the role; put it in the service account's eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "service_account_annotation" {
  description = "The annotation to set on the Kubernetes service account."
  value       = { "eks.amazonaws.com/role-arn" = aws_iam_role.this.arn }
}
