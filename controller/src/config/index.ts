/** The controller's config file. */
export { type ControllerConfigSpec, controllerConfigSchema } from './config-schema.js';
export {
  type ConfigLoad,
  type ControllerConfig,
  loadControllerConfig,
  parseControllerConfig,
} from './load-controller-config.js';
