import { defineConfig } from 'vite';

// The browser app (app/) and the in-browser shader test page (test/browser/) share this config.
export default defineConfig({
  root: '.',
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  build: { outDir: 'dist', target: 'es2022' },
  worker: { format: 'es' },
});
