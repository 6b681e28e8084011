/** A file imported as its text (`import page from "./index.html?raw"`): wrangler's Text rule, Vite's `?raw`. */
declare module "*?raw" {
  const text: string;
  export default text;
}
