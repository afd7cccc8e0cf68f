/** Policies: rules that turn monitor events into alerts (built-in kinds, policy files, the rule API). */
export { alertFor, definePolicy, SEVERITIES, type AlertData, type AlertDraft, type Policy, type Rule, type RuleFailure } from './types.js';
export {
  forbiddenListeners,
  globMatcher,
  INTEGRITY_CHECKS,
  isKernelThread,
  kernelIntegrity,
  privilegeEscalation,
  processAllowlist,
  processMatcher,
  type ForbiddenListenersConfig,
  type IntegrityCheck,
  type KernelIntegrityConfig,
  type PortRange,
  type PrivilegeEscalationConfig,
  type ProcessAllowlistConfig,
  type ProcessPattern,
} from './rules.js';
export { FIELDS as POLICY_FIELDS, loadPolicy, parsePolicy, PolicyError } from './load.js';
