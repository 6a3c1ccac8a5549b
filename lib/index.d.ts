// Types of the public entry point. Everything written in Rust is declared in the generated
// `../index.d.ts` (from the Rust doc comments); the JS-side classes are declared here.
export * from '../index'
