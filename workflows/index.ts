export { crossNetworkAction } from './cross-network-action/workflow';
export { signerNonces } from './signer-nonces';
