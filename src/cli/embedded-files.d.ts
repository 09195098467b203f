// Imports of shared libraries with `with { type: "file" }` (src/embedded-libnl.ts): Bun turns them into the
// path of the file (on disk when run from source, inside the executable's /$bunfs when compiled).
declare module "*.so.200" {
  const path: string;
  export default path;
}
