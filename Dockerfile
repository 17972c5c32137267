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
# Node's compile cache: the sources stripped of their types and compiled once, here, not at every start.
ENV NODE_COMPILE_CACHE=/app/node_modules/.cache/cdc-compile-cache
# glibc: buffers of 64 KiB and more get their own mappings, so freed ones leave the resident set.
ENV MALLOC_MMAP_THRESHOLD_=65536
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Non-root, fixed uid (Kubernetes runAsNonRoot / runAsUser: 10001). No credentials in the image:
# configuration comes from the environment, AWS credentials from the SDK chain (IRSA on EKS, task role on ECS).
# Node keeps a compile-cache directory per uid, so the cache is filled as the uid the service runs as
# (filled as root, it would never be read, and every start would strip and compile the sources).
RUN mkdir -p node_modules/.cache/cdc-compile-cache && chown 10001:10001 node_modules/.cache/cdc-compile-cache
USER 10001:10001
# Fill the cache: with no configuration the service loads every module, then stops with exit code 2.
RUN node --max-semi-space-size=2 --heap-growing-percent=100 --expose-gc src/main.ts > /dev/null 2>&1; test $? -eq 2
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=2", "--heap-growing-percent=100", "--expose-gc", "src/main.ts"]
