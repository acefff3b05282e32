// caller-utils.ts, as kit writes it, reads Vite's import.meta.env.BASE_URL.
// This UI is compiled by tsc alone: finish.mjs puts the base in its place,
// as Vite's build would (the process's path, /chat:chat:hyperc.os).
interface ImportMeta {
  readonly env: { readonly BASE_URL?: string };
}
