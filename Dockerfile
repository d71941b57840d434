# A RUM node image: Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs the preinstall check of the Node version; bin/rum.js runs it too.
COPY scripts/check-node.cjs ./scripts/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 8000: HTTP API; 8080: gateway (bridges); 7000: libp2p TCP; 7001: libp2p WebSockets
EXPOSE 8000 8080 7000 7001
ENTRYPOINT ["node", "--max-semi-space-size=16", "/app/bin/rum.js"]
CMD ["fullnode", "--apihost", "0.0.0.0", "--gatewayhost", "0.0.0.0", "--configdir", "/data/config", "--datadir", "/data/data", "--keystoredir", "/data/keystore"]
