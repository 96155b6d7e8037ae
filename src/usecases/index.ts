/** Use cases of the people-facing API: what a route calls, one use case a request. */
export { CallAnnouncements, type AnnouncementFilter, type AnnouncementInput } from './announcements';
export { CallbackVerification, type CallbackAnswer, type CallbackQuestion } from './callbacks';
export { Operators, type FraudReportInput } from './operators';
export { DecisionRecords } from './decisions';
export type { Principal, Role } from './principal';
export { KeyFileError, KeyRing, sha256Hex } from './key-ring';
export { requireNumber } from './numbers';
export { PolicyFileError, PolicySource, type PolicyInForce } from './policy-file';
export { ShadowPolicy, type ShadowReport } from './shadow-policy';
