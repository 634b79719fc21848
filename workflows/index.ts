export { crossNetworkAction } from './cross-network-action';
