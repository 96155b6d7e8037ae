# syntax=docker/dockerfile:1.7
# callguard: multi-stage build on the maintained Node LTS (22, Debian bookworm slim).

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web console is bundled here (esbuild, a dev dependency): the image serves dist/console as files.
COPY console ./console
COPY scripts/build-console.ts ./scripts/build-console.ts
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim AS runtime
# The source commit, shown by callguard_build_info: docker build --build-arg BUILD_COMMIT=$(git rev-parse HEAD)
ARG BUILD_COMMIT=""
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    BUILD_COMMIT=${BUILD_COMMIT}
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
# The embedded default keeps registry changes and the audit log here (mount a volume to keep them).
RUN mkdir -p /app/data && chown node:node /app/data
ENV REGISTRY_DATA_DIR=/app/data
USER node
EXPOSE 8080
# Listening on 0.0.0.0 needs API keys (API_KEYS_FILE), a REGISTRY_FILE, and SHAKEN_TRUST_ANCHORS
# or SHAKEN_VERIFY=false: the service refuses to start without them.
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/server.js"]
