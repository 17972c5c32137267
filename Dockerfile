# cdc-logical-replication: PostgreSQL logical replication -> AWS Kinesis Data Streams.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build step:
# the first stage only installs production dependencies.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Non-root, fixed uid (Kubernetes runAsNonRoot / runAsUser: 10001). No credentials in the image:
# configuration comes from the environment, AWS credentials from the SDK chain (IRSA on EKS, task role on ECS).
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=2", "src/main.ts"]
