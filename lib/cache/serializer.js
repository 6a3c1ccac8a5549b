'use strict'
// Sizes of cached values: the native serializer's output (exactly JSON.stringify's), whose
// length is the entry's size and whose text is what L2 stores. Cycles and BigInts reject
// with TypeError ERR_CIRCULAR / ERR_BIGINT, and big values never stall the event loop.
const native = require('../../index.js')

// TEMP (removed when main's serializer is merged): a stand-in while the native one lands.
const serializeAsync = native.serializeAsync ?? require('./serializer-shim.js').serializeAsync

module.exports = { serializeAsync }
