# The Headway server: `headway serve` on port 4680. `docker compose up` builds and runs it
# beside PostgreSQL (docker-compose.yml). Serving beyond loopback needs HEADWAY_TOKENS.

# Build: every dependency, then the compiled package in dist/.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No scripts yet: `prepare` builds, and the sources are not here until the next layer, so
# this layer stays cached while only the sources change.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY schema ./schema
COPY projections ./projections
COPY src ./src
RUN npm run build

# Run: production dependencies and dist/ only, as the unprivileged `node` user.
FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4680
# /health answers 200 once the database answers and writes go through, else 503.
# The image has no curl: Node's own fetch asks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4680/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/headway.js"]
# The health check above asks port 4680: change both together.
CMD ["serve", "--host", "0.0.0.0", "--port", "4680"]
