// A small module, bundled into js/app.js by esbuild.
export function describe(now = new Date()) {
  return `JavaScript ran at ${now.toLocaleTimeString()}, from a digested bundle.`;
}
