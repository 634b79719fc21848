export { crossNetworkAction } from './cross-network-action';
export { signerNonces } from './signer-nonces';
