import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = decodeURIComponent(new URL('.', import.meta.url).pathname);

/** Builds the UI into `web/dist`, which `slipway server` serves at `/` (with an SPA fallback). */
export default defineConfig({
  root: here,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    // `npm run dev:web` talks to a `slipway server --port 8080` running beside it.
    proxy: { '/api': 'http://localhost:8080' },
  },
});
