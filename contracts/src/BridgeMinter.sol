// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface IMintable {
    function mint(address to, uint256 amount) external;
}

/// @title BridgeMinter: the destination side. Mints once per action id: a second mint for the same id reverts, so
/// a duplicated or replayed submission can never mint twice.
contract BridgeMinter {
    IMintable public immutable token;
    address public operator;
    mapping(bytes32 => bool) public minted;

    event Minted(bytes32 indexed actionId, address indexed recipient, uint256 amount, bytes32 messageId);

    error NotOperator();
    error AlreadyMinted(bytes32 actionId);
    error ZeroAmount();

    constructor(address token_, address operator_) {
        token = IMintable(token_);
        operator = operator_;
    }

    function mint(bytes32 actionId, address recipient, uint256 amount) external {
        _mint(actionId, recipient, amount, bytes32(0));
    }

    /// The attested path: the message id of the burn on the source chain and the attestation are recorded with the
    /// mint. (The attestation is not verified on-chain in this local bridge: the `attest` step is the trust point.)
    function mintAttested(bytes32 actionId, address recipient, uint256 amount, bytes32 messageId, bytes calldata attestation)
        external
    {
        require(attestation.length > 0, 'missing attestation');
        _mint(actionId, recipient, amount, messageId);
    }

    function _mint(bytes32 actionId, address recipient, uint256 amount, bytes32 messageId) internal {
        if (msg.sender != operator) revert NotOperator();
        if (amount == 0) revert ZeroAmount();
        if (minted[actionId]) revert AlreadyMinted(actionId);
        minted[actionId] = true;
        token.mint(recipient, amount);
        emit Minted(actionId, recipient, amount, messageId);
    }
}
