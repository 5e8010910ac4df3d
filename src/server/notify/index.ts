/**
 * Build notifications: the `Notifier` contract (a forge commit-status notifier fits it too),
 * the outgoing webhook notifier (Slipway JSON or Slack-compatible), per-project targets, and
 * the hub the scheduler calls: `createNotifierHub(db, options)`.
 */
export type { BuildNotice, NoticeEvent, Notifier } from './types.js';
export { WebhookNotifier, NotifyError, webhookPayload, slackPayload } from './webhook-notifier.js';
export type { WebhookNotifierOptions } from './webhook-notifier.js';
export { createNotifierHub } from './hub.js';
export type { NotifierHub, NotifierHubOptions } from './hub.js';
export { addNotifyTarget, listNotifyTargets, removeNotifyTarget, NOTIFY_EVENTS } from './targets.js';
export type { NotifyTarget, NewNotifyTarget, NotifyEvent } from './targets.js';
