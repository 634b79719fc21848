export { crossNetworkAction, type ContinuedAction } from './workflow';
