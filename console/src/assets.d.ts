/** Stylesheets are bundled by esbuild (scripts/build-console.ts) into main.css. */
declare module '*.css';
