"""Private records in (`data`) and synthetic samples out (`sample`): the data objects every layer passes."""
