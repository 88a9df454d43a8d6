import { defineConfig } from 'vite';

// The browser app (app/) and the in-browser shader test page (test/browser/) share this config.
// `npm run app` serves the repository root (so output folders under it can be opened by URL); the
// app is at http://127.0.0.1:5173/app/. `npm run build` writes the app as a static bundle with relative paths into dist/
// (dist/app/index.html), which works from any static server or sub-folder.
export default defineConfig({
  root: '.',
  base: './',
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  build: {
    outDir: 'dist',
    target: 'es2022',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rollupOptions: { input: { app: 'app/index.html' } },
  },
  worker: { format: 'es' },
  // pre-bundle the engine's dependencies up front (the app's worker imports them; found lazily,
  // they would make the dev server reload the page once)
  optimizeDeps: {
    entries: ['app/index.html'],
    include: ['comlink', 'yaml', 'zod', 'fflate', 'fast-png', 'flatbush', 'kdbush', 'wgsl-preprocessor/wgsl-preprocessor.js'],
  },
});
