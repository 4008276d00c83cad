// @ts-check
import { defineConfig } from 'astro/config';
import node from '@astrojs/node';

// Middleware mode: our own node:http entry (server/main.ts) owns the socket, routing by Host,
// static files and shutdown; Astro only renders views. No `site` is set on purpose: every tenant
// has its own origin, computed per request by the server.
export default defineConfig({
  output: 'server',
  adapter: node({ mode: 'middleware' }),
  build: { inlineStylesheets: 'never' },
  // Our server answers only GET/HEAD through Astro today; origin checks for forms live in our
  // own session endpoints, where the tenant is known.
  security: { checkOrigin: false },
  devToolbar: { enabled: false },
});
