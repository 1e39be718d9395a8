/**
 * cXML `OrderRequest` and UBL 2.x `Order` → `NormalizedPo`, read with fast-xml-parser (namespace
 * prefixes dropped, every value kept as text so decimals stay exact).
 *
 * cXML: the delivery date is `OrderRequestHeader/@requestedDeliveryDate`, else the first
 * `ItemOut/@requestedDeliveryDate`. `OrderRequestHeader/Total` is the sum of the items (cXML puts shipping, tax and discount
 * beside it), so the payable total is computed as Total + Shipping + Tax − Discount and the source
 * block says so. The supplier's name is a `Contact role="supplierCorporate"` when present; without
 * one, the `To` identity stands in and the field is flagged low-confidence.
 *
 * UBL (2.0-2.3, Peppol BIS Order 3): `AnticipatedMonetaryTotal/PayableAmount` is the payable
 * total; the other monetary totals (TaxInclusiveAmount, PrepaidAmount and PayableRoundingAmount
 * included), `AllowanceCharge` and `TaxTotal` map one to one. A line's own `AllowanceCharge` goes
 * into its net amount (LineExtensionAmount, or quantity × price ± them when absent). `SellerSupplierParty/CustomerAssignedAccountID`
 * (the buyer's own number for the supplier) is the vendor id.
 *
 * A DOCTYPE with an internal subset (entity declarations) is refused outright; an external one
 * (`<!DOCTYPE cXML SYSTEM "...cXML.dtd">`, usual in cXML) is never fetched.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { DocumentError } from "../errors.js";
import { at, Fields, finish, isObject, type Json, messageOf, nonEmpty, optional, type ParseOptions } from "./fields.js";
import type { Adjustment, NormalizedPo, PoLine } from "./model.js";
import { minorToDecimalText } from "./money.js";

type Node = { [k: string]: Json };

const ARRAYS = new Set([
  "ItemOut",
  "OrderLine",
  "AllowanceCharge",
  "Credential",
  "Contact",
  "Note",
  "TaxSubtotal",
  "TaxTotal",
  "PartyIdentification",
  "Comments",
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 64,
  isArray: (name) => ARRAYS.has(name),
});

function parseXml(text: string, kind: "cXML" | "UBL"): Node {
  if (/<!DOCTYPE[^>[]*\[/i.test(text)) {
    throw new DocumentError(
      `the ${kind} document declares an internal DTD subset (entity declarations); it is refused to rule out entity expansion attacks`,
    );
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    const lastLine = text.trimEnd().split("\n").length;
    const truncated =
      /unclosed|not closed|ended/i.test(msg) || line >= lastLine ? " (the document ends there: truncated?)" : "";
    throw new DocumentError(`invalid XML at line ${line}, column ${col}: ${msg}${truncated}`);
  }
  try {
    return parser.parse(text) as Node;
  } catch (err) {
    throw new DocumentError(`invalid XML: ${messageOf(err)}`, { cause: err });
  }
}

/** Child object (first when repeated). */
function child(node: Json | undefined, ...path: string[]): Node | undefined {
  let cur: Json | undefined = node;
  for (const key of path) {
    if (Array.isArray(cur)) cur = cur[0];
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  if (Array.isArray(cur)) cur = cur[0];
  if (typeof cur === "string") return { "#text": cur };
  return isObject(cur) ? cur : undefined;
}

function list(node: Json | undefined, key: string): Node[] {
  if (!isObject(node)) return [];
  const v = node[key];
  const items = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return items.map((i) => (isObject(i) ? i : { "#text": i }));
}

/** Text content of an element (or of the element at `path` below it). */
function text(node: Json | undefined, ...path: string[]): string | undefined {
  const n = path.length ? child(node, ...path) : Array.isArray(node) ? node[0] : node;
  if (typeof n === "string") return n.trim() || undefined;
  if (typeof n === "number") return String(n);
  if (!isObject(n)) return undefined;
  const t = n["#text"];
  if (typeof t === "string") return t.trim() || undefined;
  if (typeof t === "number") return String(t);
  return undefined;
}

function attr(node: Json | undefined, name: string): string | undefined {
  const n = Array.isArray(node) ? node[0] : node;
  if (!isObject(n)) return undefined;
  const v = n[`@${name}`];
  return typeof v === "string" ? v.trim() || undefined : undefined;
}

class Mapping {
  readonly fields: { field: string; from: string }[] = [];
  readonly lowConfidence: string[] = [];
  note(field: string, from: string): void {
    this.fields.push({ field, from });
  }
}

// ------------------------------------------------------------------------------------------ cXML

export function parseCxml(xml: string, fileName: string, opts: ParseOptions): NormalizedPo {
  const doc = parseXml(xml, "cXML");
  const root = child(doc, "cXML");
  if (!root) throw new DocumentError("the XML document has no <cXML> root element");
  const request = child(root, "Request");
  const order = child(request, "OrderRequest");
  if (!order) {
    const what = request
      ? Object.keys(request).find((k) => !k.startsWith("@") && k !== "#text")
      : Object.keys(root).find((k) => !k.startsWith("@") && k !== "Header");
    throw new DocumentError(
      `the cXML document is ${what ? `a ${what}` : "empty"}, not an OrderRequest (a purchase order)`,
    );
  }
  const header = child(order, "OrderRequestHeader");
  if (!header) throw new DocumentError("the cXML OrderRequest has no OrderRequestHeader");
  const H = "OrderRequestHeader";
  const f = new Fields();
  const m = new Mapping();

  const currency = f.currency(
    attr(child(header, "Total", "Money"), "currency"),
    at(`${H}/Total/Money/@currency`, "currency"),
  );
  m.note("currency", `${H}/Total/Money/@currency`);
  const money = (node: Node | undefined, where: string): number | undefined => {
    const money = child(node, "Money");
    if (!money) return undefined;
    const cur = attr(money, "currency");
    if (cur && cur.toUpperCase() !== currency) {
      throw new DocumentError(`${where}: the amount is in ${cur}, the order in ${currency}`);
    }
    return f.amount(text(money), at(where), currency);
  };

  const items = list(order, "ItemOut");
  if (items.length === 0) throw new DocumentError("the cXML OrderRequest has no ItemOut (order lines)");
  const deliveries: string[] = [];
  const lines = items.map((item, i): PoLine => {
    const w = (k: string) => at(`ItemOut[${i + 1}]/${k}`, k);
    const detail = child(item, "ItemDetail");
    const desc = text(detail, "Description") ?? text(child(detail, "Description"), "ShortName");
    const d = attr(item, "requestedDeliveryDate");
    if (d) deliveries.push(d);
    return f.line(
      {
        id: attr(item, "lineNumber"),
        description: desc ?? text(item, "ItemID", "SupplierPartID") ?? "",
        quantity: attr(item, "quantity"),
        unit: text(detail, "UnitOfMeasure"),
        unitPrice: text(detail, "UnitPrice", "Money"),
        amount: undefined,
      },
      (k) =>
        w(
          {
            id: "@lineNumber",
            description: "ItemDetail/Description",
            quantity: "@quantity",
            unit: "ItemDetail/UnitOfMeasure",
            unitPrice: "ItemDetail/UnitPrice/Money",
            amount: "",
          }[k],
        ),
      i,
      currency,
    );
  });
  m.note("lines[].id", "ItemOut/@lineNumber");
  m.note("lines[].quantity", "ItemOut/@quantity");
  m.note("lines[].unit", "ItemOut/ItemDetail/UnitOfMeasure");
  m.note("lines[].unitPriceMinor", "ItemOut/ItemDetail/UnitPrice/Money");
  m.note("lines[].amountMinor", "computed: quantity × unit price (cXML has no line amount)");

  const itemsTotal = money(child(header, "Total"), `${H}/Total/Money`);
  if (itemsTotal === undefined) throw new DocumentError(`missing order total (${H}/Total/Money)`);
  const charges: Adjustment[] = [];
  const shipping = money(child(header, "Shipping"), `${H}/Shipping/Money`);
  if (shipping !== undefined) {
    charges.push({ reason: text(header, "Shipping", "Description") ?? "Shipping", amountMinor: shipping });
    m.note("charges[]", `${H}/Shipping`);
  }
  const allowances: Adjustment[] = [];
  const discount = money(child(header, "Discount", "DiscountAmount"), `${H}/Discount/DiscountAmount/Money`);
  if (discount !== undefined) {
    allowances.push({ reason: "Discount", amountMinor: Math.abs(discount) });
    m.note("allowances[]", `${H}/Discount/DiscountAmount`);
  }
  const taxMinor = money(child(header, "Tax"), `${H}/Tax/Money`);
  if (taxMinor !== undefined) m.note("tax", `${H}/Tax/Money`);
  const chargeTotal = charges.reduce((a, c) => a + c.amountMinor, 0);
  const allowanceTotal = allowances.reduce((a, c) => a + c.amountMinor, 0);
  const totalMinor = itemsTotal + chargeTotal - allowanceTotal + (taxMinor ?? 0);
  m.note("totals.lineTotalMinor", `${H}/Total/Money`);
  m.note(
    "totalMinor",
    charges.length || allowances.length || taxMinor !== undefined
      ? "computed: Total + Shipping − Discount + Tax (cXML states no payable total)"
      : `${H}/Total/Money`,
  );

  const fromIds = list(child(root, "Header", "From"), "Credential");
  const toIds = list(child(root, "Header", "To"), "Credential");
  const credentialIds = (creds: Node[]) =>
    creds.flatMap((c) => {
      const value = text(c, "Identity");
      return value ? [{ scheme: attr(c, "domain") ?? "", value }] : [];
    });
  const supplierIds = credentialIds(toIds);
  const vendorId = supplierIds.find((c) => /^(vendorid|supplierid|privateid)$/i.test(c.scheme))?.value;
  const contacts = list(header, "Contact");
  const supplierContact = contacts.find((c) => /^supplier/i.test(attr(c, "role") ?? ""));
  let supplierName = text(supplierContact, "Name");
  if (supplierName) m.note("supplier.name", `${H}/Contact[@role=${attr(supplierContact, "role")}]/Name`);
  else if (supplierIds[0]) {
    supplierName = supplierIds[0].value;
    m.note("supplier.name", "Header/To/Credential/Identity (the document names no supplier)");
    m.lowConfidence.push("supplier.name");
  }
  if (vendorId) m.note("supplier.id", "Header/To/Credential[@domain=VendorID]/Identity");
  const buyerIds = credentialIds(fromIds);
  let buyerName = text(header, "BillTo", "Address", "Name");
  if (buyerName) m.note("buyer.name", `${H}/BillTo/Address/Name`);
  else if (buyerIds[0]) {
    buyerName = buyerIds[0].value;
    m.note("buyer.name", "Header/From/Credential/Identity (the document names no bill-to party)");
    m.lowConfidence.push("buyer.name");
  }

  const type = attr(header, "type");
  const comments = list(header, "Comments")
    .map((c) => text(c))
    .filter((c): c is string => !!c);
  if (type && type !== "new")
    comments.unshift(`cXML order type "${type}": a change to an earlier order, not a new one.`);
  m.note("poNumber", `${H}/@orderID`);
  m.note("orderDate", `${H}/@orderDate`);
  const headerDelivery = attr(header, "requestedDeliveryDate");
  const delivery = headerDelivery ?? deliveries[0];
  if (delivery) {
    m.note("requestedDelivery", headerDelivery ? `${H}/@requestedDeliveryDate` : "ItemOut[1]/@requestedDeliveryDate");
  }

  return finish(
    {
      poNumber: f.text(attr(header, "orderID"), at(`${H}/@orderID`, "PO number")),
      orderDate: f.date(attr(header, "orderDate"), at(`${H}/@orderDate`, "order date"), opts),
      buyer: {
        name: f.text(buyerName, at(`${H}/BillTo/Address/Name`, "buyer name")),
        ...optional("id", buyerIds[0]?.value),
      },
      supplier: {
        name: f.text(supplierName, at(`${H}/Contact[@role=supplierCorporate]/Name`, "supplier name")),
        ...optional("id", vendorId),
        ...nonEmpty("ids", supplierIds),
      },
      currency,
      lines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional(
        "tax",
        taxMinor === undefined
          ? undefined
          : { amountMinor: taxMinor, ...optional("description", text(header, "Tax", "Description")) },
      ),
      totals: {
        lineTotalMinor: itemsTotal,
        ...optional("taxMinor", taxMinor),
      },
      totalMinor,
      ...optional(
        "requestedDelivery",
        f.optionalDate(
          delivery,
          at(headerDelivery ? `${H}/@requestedDeliveryDate` : "ItemOut/@requestedDeliveryDate"),
          opts,
        ),
      ),
      ...optional("notes", comments.length ? comments.join("\n") : undefined),
      source: {
        format: "cxml",
        document: fileName,
        method: "structured",
        fields: m.fields,
        ...nonEmpty("lowConfidence", m.lowConfidence),
      },
    },
    "cxml",
  );
}

// ------------------------------------------------------------------------------------------- UBL

const UBL_ORDER_NS = "urn:oasis:names:specification:ubl:schema:xsd:Order-2";

export function parseUbl(xml: string, fileName: string, opts: ParseOptions): NormalizedPo {
  const doc = parseXml(xml, "UBL");
  if (!xml.includes(UBL_ORDER_NS)) {
    throw new DocumentError(`the <Order> document is not in the UBL 2 Order namespace (${UBL_ORDER_NS})`);
  }
  const order = child(doc, "Order");
  if (!order) throw new DocumentError("the XML document has no <Order> root element");
  const f = new Fields();
  const m = new Mapping();
  const version = text(order, "UBLVersionID");
  if (version && !/^2(\.\d+)?$/.test(version)) {
    throw new DocumentError(`UBLVersionID is ${version}; only UBL 2.x orders are read`);
  }

  const totals = child(order, "AnticipatedMonetaryTotal");
  const currency = f.currency(
    text(order, "DocumentCurrencyCode") ?? attr(child(totals, "PayableAmount"), "currencyID"),
    at("DocumentCurrencyCode", "currency"),
  );
  m.note("currency", "DocumentCurrencyCode");
  const amount = (node: Node | undefined, where: string): number | undefined => {
    if (!node) return undefined;
    const cur = attr(node, "currencyID");
    if (cur && cur.toUpperCase() !== currency) {
      throw new DocumentError(`${where}: the amount is in ${cur}, the order in ${currency}`);
    }
    return f.optionalAmount(text(node), at(where), currency);
  };

  const orderLines = list(order, "OrderLine");
  if (orderLines.length === 0) throw new DocumentError("the UBL Order has no OrderLine");
  const deliveries: string[] = [];
  const lines = orderLines.map((ol, i): PoLine => {
    const item = child(ol, "LineItem");
    const p = `OrderLine[${i + 1}]/LineItem`;
    const quantity = child(item, "Quantity");
    const base = text(item, "Price", "BaseQuantity");
    const priceText = text(item, "Price", "PriceAmount");
    const d = text(item, "Delivery", "RequestedDeliveryPeriod", "StartDate");
    if (d) deliveries.push(d);
    let unitPrice: string | undefined = priceText;
    if (base && priceText && !/^1(\.0+)?$/.test(base)) {
      // A price per N units: the unit price is exact only if it divides into whole minor units.
      const perBase = f.amount(priceText, at(`${p}/Price/PriceAmount`), currency);
      const baseQty = f.decimal(base, at(`${p}/Price/BaseQuantity`));
      const [whole = "0", frac = ""] = baseQty.split(".");
      const num = BigInt(perBase) * 10n ** BigInt(frac.length);
      const den = BigInt(whole + frac);
      if (den === 0n || num % den !== 0n) {
        throw new DocumentError(
          `${p}/Price: a price of ${priceText} per ${baseQty} ${attr(child(item, "Price", "BaseQuantity"), "unitCode") ?? "units"} is not a whole number of minor units per unit`,
        );
      }
      unitPrice = minorToDecimalText(Number(num / den), currency);
      m.note(`lines[${i}].unitPriceMinor`, `${p}/Price/PriceAmount ÷ BaseQuantity`);
    }
    const where: Record<string, string> = {
      id: "ID",
      description: "Item/Description",
      quantity: "Quantity",
      unit: "Quantity/@unitCode",
      unitPrice: "Price/PriceAmount",
      amount: "LineExtensionAmount",
    };
    const line = f.line(
      {
        id: text(item, "ID"),
        description: text(item, "Item", "Description") ?? text(item, "Item", "Name") ?? "",
        quantity: text(quantity),
        unit: attr(quantity, "unitCode") ?? "C62",
        unitPrice,
        amount: text(item, "LineExtensionAmount"),
      },
      (k) => at(`${p}/${where[k] ?? k}`, k),
      i,
      currency,
    );
    // Line allowances and charges (Peppol BIS 3): part of the line's net amount. A price-level
    // AllowanceCharge only explains how PriceAmount (already net) was reached, so it is not applied.
    const { charges: lineCharges, allowances: lineAllowances } = allowanceCharges(
      list(item, "AllowanceCharge"),
      `${p}/AllowanceCharge`,
      f,
      currency,
    );
    if (lineCharges.length || lineAllowances.length) {
      if (lineCharges.length) line.charges = lineCharges;
      if (lineAllowances.length) line.allowances = lineAllowances;
      if (text(item, "LineExtensionAmount") === undefined) {
        line.amountMinor += sum(lineCharges) - sum(lineAllowances);
      }
      m.note(`lines[${i}].charges, allowances`, `${p}/AllowanceCharge`);
    }
    return line;
  });
  m.note("lines[].id", "OrderLine/LineItem/ID");
  m.note("lines[].quantity", "OrderLine/LineItem/Quantity");
  m.note("lines[].unit", "OrderLine/LineItem/Quantity/@unitCode (C62 'one' when absent)");
  m.note("lines[].unitPriceMinor", "OrderLine/LineItem/Price/PriceAmount");
  m.note("lines[].amountMinor", "OrderLine/LineItem/LineExtensionAmount (quantity × price when absent)");

  const { charges, allowances } = allowanceCharges(list(order, "AllowanceCharge"), "AllowanceCharge", f, currency);
  if (charges.length) m.note("charges[]", "AllowanceCharge[ChargeIndicator=true]");
  if (allowances.length) m.note("allowances[]", "AllowanceCharge[ChargeIndicator=false]");

  const taxTotals = list(order, "TaxTotal");
  let tax: NormalizedPo["tax"];
  if (taxTotals.length > 0) {
    const taxAmount = taxTotals.reduce(
      (a, t, i) => a + (amount(child(t, "TaxAmount"), `TaxTotal[${i + 1}]/TaxAmount`) ?? 0),
      0,
    );
    const subtotals = taxTotals.flatMap((t) => list(t, "TaxSubtotal"));
    const rates = [...new Set(subtotals.map((s) => text(s, "TaxCategory", "Percent")).filter((r) => r !== undefined))];
    const rate =
      rates.length === 1 ? f.optionalRate(rates[0], at("TaxTotal/TaxSubtotal/TaxCategory/Percent")) : undefined;
    tax = { amountMinor: taxAmount, ...optional("rate", rate) };
    m.note("tax", "TaxTotal/TaxAmount");
  }

  const M = "AnticipatedMonetaryTotal";
  if (!totals) throw new DocumentError(`missing ${M} (the UBL Order's totals)`);
  const payable = amount(child(totals, "PayableAmount"), `${M}/PayableAmount`);
  if (payable === undefined) throw new DocumentError(`missing payable total (${M}/PayableAmount)`);
  m.note("totalMinor", `${M}/PayableAmount`);
  const stated = {
    ...optional("lineTotalMinor", amount(child(totals, "LineExtensionAmount"), `${M}/LineExtensionAmount`)),
    ...optional("chargeTotalMinor", amount(child(totals, "ChargeTotalAmount"), `${M}/ChargeTotalAmount`)),
    ...optional("allowanceTotalMinor", amount(child(totals, "AllowanceTotalAmount"), `${M}/AllowanceTotalAmount`)),
    ...optional("taxExclusiveMinor", amount(child(totals, "TaxExclusiveAmount"), `${M}/TaxExclusiveAmount`)),
    ...optional("taxMinor", tax?.amountMinor),
    ...optional("taxInclusiveMinor", amount(child(totals, "TaxInclusiveAmount"), `${M}/TaxInclusiveAmount`)),
    ...optional("prepaidMinor", amount(child(totals, "PrepaidAmount"), `${M}/PrepaidAmount`)),
    ...optional("roundingMinor", amount(child(totals, "PayableRoundingAmount"), `${M}/PayableRoundingAmount`)),
  };
  m.note("totals", `${M}/*`);

  const seller = child(order, "SellerSupplierParty");
  const sellerParty = child(seller, "Party");
  const supplierIds = list(sellerParty, "PartyIdentification").flatMap((pi) => {
    const id = child(pi, "ID");
    const value = text(id);
    return value ? [{ scheme: attr(id, "schemeID") ?? "", value }] : [];
  });
  const endpoint = child(sellerParty, "EndpointID");
  if (text(endpoint))
    supplierIds.push({ scheme: attr(endpoint, "schemeID") ?? "EndpointID", value: text(endpoint) ?? "" });
  const supplierName =
    text(sellerParty, "PartyName", "Name") ?? text(sellerParty, "PartyLegalEntity", "RegistrationName");
  const vendorId = text(seller, "CustomerAssignedAccountID");
  m.note("supplier.name", "SellerSupplierParty/Party/PartyName/Name");
  if (vendorId) m.note("supplier.id", "SellerSupplierParty/CustomerAssignedAccountID");
  const buyer = child(order, "BuyerCustomerParty");
  const buyerParty = child(buyer, "Party");
  m.note("buyer.name", "BuyerCustomerParty/Party/PartyName/Name");
  m.note("poNumber", "ID");
  m.note("orderDate", "IssueDate");
  const delivery = text(order, "Delivery", "RequestedDeliveryPeriod", "StartDate") ?? deliveries[0];
  if (delivery) m.note("requestedDelivery", "Delivery/RequestedDeliveryPeriod/StartDate");
  const notes = list(order, "Note")
    .map((n) => text(n))
    .filter((n): n is string => !!n);

  return finish(
    {
      poNumber: f.text(text(order, "ID"), at("Order/ID", "PO number")),
      orderDate: f.date(text(order, "IssueDate"), at("Order/IssueDate", "issue date"), opts),
      buyer: {
        name: f.text(
          text(buyerParty, "PartyName", "Name") ?? text(buyerParty, "PartyLegalEntity", "RegistrationName"),
          at("BuyerCustomerParty/Party/PartyName/Name", "buyer name"),
        ),
        ...optional("id", text(buyer, "SupplierAssignedAccountID")),
      },
      supplier: {
        name: f.text(supplierName, at("SellerSupplierParty/Party/PartyName/Name", "supplier name")),
        ...optional("id", vendorId),
        ...nonEmpty("ids", supplierIds),
      },
      currency,
      lines,
      ...nonEmpty("charges", charges),
      ...nonEmpty("allowances", allowances),
      ...optional("tax", tax),
      totals: stated,
      totalMinor: payable,
      ...optional(
        "requestedDelivery",
        f.optionalDate(delivery, at("Delivery/RequestedDeliveryPeriod/StartDate"), opts),
      ),
      ...optional("notes", notes.length ? notes.join("\n") : undefined),
      source: { format: "ubl", document: fileName, method: "structured", fields: m.fields },
    },
    "ubl",
  );
}

const sum = (list: Adjustment[]) => list.reduce((a, x) => a + x.amountMinor, 0);

/** UBL `AllowanceCharge` elements → charges (ChargeIndicator true) and allowances (false). */
function allowanceCharges(
  nodes: Node[],
  path: string,
  f: Fields,
  currency: string,
): { charges: Adjustment[]; allowances: Adjustment[] } {
  const charges: Adjustment[] = [];
  const allowances: Adjustment[] = [];
  nodes.forEach((ac, i) => {
    const p = `${path}[${i + 1}]`;
    const indicator = text(ac, "ChargeIndicator");
    if (indicator !== "true" && indicator !== "false") {
      throw new DocumentError(`${p}/ChargeIndicator: expected true or false, got ${JSON.stringify(indicator ?? "")}`);
    }
    const cur = attr(child(ac, "Amount"), "currencyID");
    if (cur && cur.toUpperCase() !== currency) {
      throw new DocumentError(`${p}/Amount: the amount is in ${cur}, the order in ${currency}`);
    }
    const adj = f.adjustment(
      text(ac, "AllowanceChargeReason"),
      text(ac, "Amount"),
      text(ac, "AllowanceChargeReasonCode"),
      (k) =>
        at(
          `${p}/${k === "amount" ? "Amount" : k === "code" ? "AllowanceChargeReasonCode" : "AllowanceChargeReason"}`,
          k,
        ),
      currency,
    );
    (indicator === "true" ? charges : allowances).push(adj);
  });
  return { charges, allowances };
}
