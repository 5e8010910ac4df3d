/** Roles in increasing power, and the check of one against another: the shared words of src/contract/. */
export { ROLES, hasRole } from '../../contract/roles.js';
