// The seeds' design: a Piscina worker that runs JSON.stringify on what it is sent.
export default function stringify(/** @type {unknown} */ value) {
  return JSON.stringify(value)
}
