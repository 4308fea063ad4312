"""The treasury's RPC reads over a real devnet chain (no daemon): supply split into issued, burned
and circulating; a voucher's status by id and by string; offers and claims; bad params named."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from chain.devnet_keys import devnet_address
from chain.treasury_types import BuybackOffer, BuybackSell
from neurod.rpc import INVALID_PARAMS, RpcError
from neurod.treasury_rpc import supply_json, treasury_methods
from tests.support.chain_builders import new_chain
from tests.support.market import ALICE, NTK, step, tx
from tests.unit.chain.test_treasury import TREASURY, USD, redeem, voucher


def call(methods: dict[str, Any], name: str, **params: Any) -> Any:
    return trio.run(lambda: methods[name](**params))


def test_reads_follow_redemptions_and_buybacks() -> None:
    chain = new_chain()
    methods = treasury_methods(SimpleNamespace(chain=chain))  # type: ignore[arg-type]
    v = voucher(chain.chain_id)
    assert call(methods, "voucher_status", voucher=v.voucher.encode().hex())["redeemed"] is False
    offer = tx(chain, TREASURY, BuybackOffer(USD, 2_000_000, 10 * NTK, 50))
    step(chain, redeem(chain.chain_id, ALICE, v, nonce=0), offer)
    sell = tx(chain, ALICE, BuybackSell(offer.txid, 3 * NTK))
    step(chain, sell)

    status = call(methods, "voucher_status", voucher=v.voucher.voucher_id.hex())
    assert (status["redeemed"], status["account"], status["height"], status["amount"]) == (
        True, devnet_address("alice"), 1, 5 * NTK)
    by_text = call(methods, "voucher_status", voucher=v.voucher.encode().hex())
    assert by_text["this_chain"] is True and by_text["expired"] is False and by_text["redeemed"] is True
    [listed] = call(methods, "buyback_offers", open_only=True)
    assert (listed["offer"], listed["price"], listed["sold_ntk"], listed["remaining_ntk"]) == (
        offer.txid.hex(), "2", "3", "7")
    [claim] = call(methods, "buyback_claims", seller=devnet_address("alice"))
    assert (claim["claim"], claim["value"], claim["amount_ntk"]) == (sell.txid.hex(), "6", "3")
    assert call(methods, "buyback_claims", offer="00" * 32) == []
    for spelled in (offer.txid.hex().upper(), "0x" + offer.txid.hex()):  # the same offer: it was no match
        assert [c["claim"] for c in call(methods, "buyback_claims", offer=spelled)] == [sell.txid.hex()]
    assert call(methods, "buyback_offer", offer=offer.txid.hex().upper())["offer"] == offer.txid.hex()
    supply = supply_json(chain)
    assert supply["burned"] == 3 * NTK and supply["circulating"] == supply["issued"] - 3 * NTK
    assert supply["rewards"] == 2 * chain.params.block_reward(1) and supply["genesis"] == chain.genesis.supply
    assert supply["treasury"] == devnet_address("treasury")


HUGE = "a" * (3 << 20)  # under the 4 MiB body limit


@pytest.mark.parametrize("name, params, param", [
    ("voucher_status", {"voucher": "abc"}, "voucher"), ("voucher_status", {"voucher": "ab" * 40}, "voucher"),
    ("voucher_status", {"voucher": 5}, "voucher"), ("voucher_status", {"voucher": HUGE}, "voucher"),
    ("voucher_status", {"voucher": "ntkv1AAAA"}, "voucher"),
    ("buyback_claims", {"limit": 0}, "limit"), ("buyback_claims", {"limit": True}, "limit"),
    ("buyback_claims", {"offer": "zz"}, "offer"), ("buyback_claims", {"offer": ["00" * 32]}, "offer"),
    ("buyback_claims", {"offer": HUGE}, "offer"), ("buyback_claims", {"seller": HUGE}, "seller"),
    ("buyback_claims", {"seller": 5}, "seller"),
    ("buyback_offer", {"offer": "zz"}, "offer"), ("buyback_offer", {"offer": HUGE}, "offer"),
    ("buyback_offer", {"offer": None}, "offer"),
    ("buyback_offers", {"open_only": "false"}, "open_only"), ("buyback_offers", {"open_only": 1}, "open_only"),
    ("buyback_offers", {"open_only": None}, "open_only"),
])
def test_bad_params_are_named(name: str, params: dict[str, Any], param: str) -> None:
    """Named by the param, in a short message: junk was filtered to nothing (offer, open_only) or
    echoed back whole (a 3 MB offer id came back in a 3 MB message)."""
    methods = treasury_methods(SimpleNamespace(chain=new_chain()))  # type: ignore[arg-type]
    with pytest.raises(RpcError) as caught:
        call(methods, name, **params)
    assert caught.value.code in (INVALID_PARAMS, -32012)
    assert caught.value.data is not None and caught.value.data["param"] == param
    assert len(caught.value.message) < 300, caught.value.message[:300]
