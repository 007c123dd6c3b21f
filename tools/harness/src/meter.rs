//! DynamoDB as a bill: a client whose every call asks for `ReturnConsumedCapacity: TOTAL` and
//! adds up what DynamoDB (Local) says it consumed, with the number of requests per operation.
//! Tests and the bench put it under any adapter (`Meter::client`) to say what a use case costs.

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a client consumed so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bill {
    /// Requests per operation (`GetItem`, `Query`, ...): one per call (the SDK's retries of a
    /// call are not counted again).
    pub requests: BTreeMap<&'static str, u64>,
    pub read_units: f64,
    pub write_units: f64,
}

impl Bill {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// What was consumed between `earlier` and `self`.
    pub fn since(&self, earlier: &Bill) -> Bill {
        let mut requests = self.requests.clone();
        for (k, v) in &earlier.requests {
            if let Some(n) = requests.get_mut(k) {
                *n -= v;
            }
        }
        requests.retain(|_, v| *v > 0);
        Bill {
            requests,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
        }
    }
}

impl std::fmt::Display for Bill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ops: Vec<String> = self
            .requests
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        write!(
            f,
            "{} requests ({}), {:.1} RCU, {:.1} WCU",
            self.total_requests(),
            ops.join(", "),
            self.read_units,
            self.write_units
        )
    }
}

/// The interceptor; clone it to read the bill while clients use it.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<Bill>>);

impl Meter {
    /// A DynamoDB client of `sdk` that this meter bills.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    pub fn bill(&self) -> Bill {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, op: &'static str) {
        *self.0.lock().unwrap().requests.entry(op).or_default() += 1;
    }

    fn add(&self, op: &'static str, consumed: &[&ConsumedCapacity]) {
        let mut bill = self.0.lock().unwrap();
        for c in consumed {
            // DynamoDB Local reports CapacityUnits, and Read/Write units for some calls only.
            let (r, w) = (c.read_capacity_units(), c.write_capacity_units());
            match (r, w) {
                (None, None) => {
                    let units = c.capacity_units().unwrap_or_default();
                    if matches!(op, "GetItem" | "Query" | "Scan" | "BatchGetItem") {
                        bill.read_units += units;
                    } else {
                        bill.write_units += units;
                    }
                }
                _ => {
                    bill.read_units += r.unwrap_or_default();
                    bill.write_units += w.unwrap_or_default();
                }
            }
        }
    }
}

/// Counts the request and sets `return_consumed_capacity` on the inputs of the operations that
/// take it.
macro_rules! ask_total {
    ($meter:expr, $input:expr, $($name:literal => $ty:ty),*) => {{
        $(
            if let Some(i) = $input.downcast_mut::<$ty>() {
                i.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
                $meter.count($name);
                return Ok(());
            }
        )*
        $meter.count("other");
    }};
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "meter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        ask_total!(
            self,
            input,
            "GetItem" => op::get_item::GetItemInput,
            "PutItem" => op::put_item::PutItemInput,
            "UpdateItem" => op::update_item::UpdateItemInput,
            "DeleteItem" => op::delete_item::DeleteItemInput,
            "Query" => op::query::QueryInput,
            "Scan" => op::scan::ScanInput,
            "BatchGetItem" => op::batch_get_item::BatchGetItemInput,
            "BatchWriteItem" => op::batch_write_item::BatchWriteItemInput,
            "TransactWriteItems" => op::transact_write_items::TransactWriteItemsInput,
            "TransactGetItems" => op::transact_get_items::TransactGetItemsInput
        );
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(out) = context.output_or_error() else {
            // A refused request (a failed condition) is billed by DynamoDB but reports nothing.
            return Ok(());
        };
        macro_rules! one {
            ($($name:literal => $ty:ty),*) => {$(
                if let Some(o) = out.downcast_ref::<$ty>() {
                    self.add($name, &o.consumed_capacity().into_iter().collect::<Vec<_>>());
                    return Ok(());
                }
            )*};
        }
        macro_rules! many {
            ($($name:literal => $ty:ty),*) => {$(
                if let Some(o) = out.downcast_ref::<$ty>() {
                    self.add($name, &o.consumed_capacity().iter().collect::<Vec<_>>());
                    return Ok(());
                }
            )*};
        }
        one!(
            "GetItem" => op::get_item::GetItemOutput,
            "PutItem" => op::put_item::PutItemOutput,
            "UpdateItem" => op::update_item::UpdateItemOutput,
            "DeleteItem" => op::delete_item::DeleteItemOutput,
            "Query" => op::query::QueryOutput,
            "Scan" => op::scan::ScanOutput
        );
        many!(
            "BatchGetItem" => op::batch_get_item::BatchGetItemOutput,
            "BatchWriteItem" => op::batch_write_item::BatchWriteItemOutput,
            "TransactWriteItems" => op::transact_write_items::TransactWriteItemsOutput,
            "TransactGetItems" => op::transact_get_items::TransactGetItemsOutput
        );
        Ok(())
    }
}
