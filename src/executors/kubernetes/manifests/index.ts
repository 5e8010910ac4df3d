/** What a build creates on the cluster (see ../DESIGN.md): names, labels and pure builders. */
export * from './caches.js';
export * from './names.js';
export * from './pod.js';
export * from './seed.js';
export * from './step.js';
export * from './wrapper.js';
