# syntax=docker/dockerfile:1
# Portcullis: a small non-root image that runs `portcullis start`.
# Node 24, the newest LTS (the suite runs on it in CI); package.json engines accept 22.12+.
#
#   docker build -t portcullis .
#   docker run --rm -p 8080:8080 portcullis          # the demo config, as `npm start`
#   docker compose up --build                        # with Redis and a sample upstream
#
# Every command below is also run by the test suite: the build (`tsc -p tsconfig.build.json`,
# test/helpers/cli.ts), `node dist/cli.js start` with $PORTCULLIS_CONFIG, the healthcheck and
# `node dist/demo/echo-server.js` of docker-compose.yml (test/ops/*.test.ts).

# 1. Compile. Dependencies are installed before the sources are copied, so that a source
#    change reuses the cached install. --ignore-scripts: `prepare` (the build) needs the
#    sources, which are not there yet; no dependency has an install script.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Production dependencies only, on the same base image, so native prebuilds
#    (@node-rs/argon2 for glibc) match the runtime.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: compiled code, production dependencies, the browser scripts the gateway serves
#    (client/), and package.json (it makes dist/ ES modules). No compiler, no sources.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORTCULLIS_CONFIG=/etc/portcullis/gateway.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY client ./client
# The demo config, so that `docker run` alone shows something; mount your own over it
# (mount the directory, not the file: editors and ConfigMaps replace the file by rename,
# which a single-file bind mount would not follow, and hot reload would miss the change).
COPY gateway.yaml /etc/portcullis/gateway.yaml
# A place for keys that belongs to the runtime user, so a named volume mounted here is
# writable by `portcullis keys generate` (docker-compose.yml's keygen step).
RUN mkdir -p /var/lib/portcullis/keys && chown -R node:node /var/lib/portcullis
# The image's `node` user (uid 1000): the code and config are root's and read-only to it.
USER node
EXPOSE 8080
# No shell or curl: node itself asks /healthz on the port named in $PORTCULLIS_CONFIG.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/ops/healthcheck.js"]
# Node is PID 1 and handles SIGTERM itself (drain, then exit 0); give `docker stop` a
# --time longer than server.shutdownTimeout (25s by default; docker's default is 10s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start"]
