# syntax=docker/dockerfile:1
# Portcullis: a small non-root image that runs `portcullis start`.
# Node 22 is a maintained LTS; the code also runs on Node 20.19+ and 24.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `prepare` builds dist/ during the install.
RUN npm ci --no-audit --no-fund
# Keep only what runs: production dependencies and the compiled code.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    PORTCULLIS_CONFIG=/etc/portcullis/gateway.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json gateway.yaml ./
COPY config ./config
COPY gateway.yaml /etc/portcullis/gateway.yaml
# The image's `node` user (uid 1000); keys and config are mounted read-only.
USER node
EXPOSE 8080
# No shell or curl needed: node itself asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/ops/healthcheck.js"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start"]
