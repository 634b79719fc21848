# Settle's processes in one image: the worker, the chain watcher, the HTTP API, the codec server, and the jobs of
# docker-compose.yml. TypeScript runs through tsx (`node --import tsx <entry>`, as the native cluster and the npm scripts
# run it), so the image holds the sources, not a build. test/unit/compose.test.ts checks that what docker-compose.yml
# runs is in this image: the entry files (not excluded by .dockerignore) and the packages they import (production
# dependencies only).
FROM node:20.20.2-bookworm-slim

WORKDIR /app

# Dependencies first, so that a change of code does not reinstall them. Production dependencies only: tsx, hardhat
# and solc included (they are dependencies, not devDependencies).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .

# Where the networks file, keys and other per-deployment files are mounted (a volume takes this folder's owner).
RUN mkdir -p /etc/settle && chown node:node /etc/settle
USER node

# What `npm run worker` runs, as the process itself (signals reach it); docker-compose.yml sets each service's command.
CMD ["node", "--import", "tsx", "workers/worker/main.ts"]
