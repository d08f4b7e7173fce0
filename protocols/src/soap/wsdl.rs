//! `GET /soap?wsdl`: the WSDL 1.1 contract (document/literal, wrapped) of the SOAP users
//! endpoint, importable by standard toolkits (zeep, .NET, JAX-WS) as is. The service
//! address is this node's `/soap` as the client reached it (the `Host` header).

use xml::escape::escape_str_attribute;

use super::NS;

/// `soapAction` of an operation, as the WSDL declares it.
pub fn action(operation: &str) -> String {
    format!("{NS}#{operation}")
}

/// The WSDL, with `location` as the SOAP endpoint's address.
pub fn document(location: &str) -> String {
    // The one variable attribute of a fixed document: escaped by xml-rs, as the writer
    // escapes the replies' text.
    let location = escape_str_attribute(location);
    let register = action("RegisterUser");
    let lookup = action("LookupUser");
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="TroupeUsers" targetNamespace="{NS}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="{NS}">
  <wsdl:documentation>Troupe users over SOAP 1.1: register an account, look one up by username (an anonymous lookup answers the public fields: no email).</wsdl:documentation>
  <wsdl:types>
    <xsd:schema targetNamespace="{NS}" elementFormDefault="qualified">
      <xsd:complexType name="User">
        <xsd:sequence>
          <xsd:element name="id" type="xsd:string"/>
          <xsd:element name="username" type="xsd:string"/>
          <xsd:element name="email" type="xsd:string" minOccurs="0"/>
          <xsd:element name="created_at" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:element name="RegisterUser">
        <xsd:complexType>
          <xsd:sequence>
            <xsd:element name="username" type="xsd:string"/>
            <xsd:element name="email" type="xsd:string"/>
            <xsd:element name="password" type="xsd:string"/>
            <xsd:element name="full_name" type="xsd:string" minOccurs="0"/>
          </xsd:sequence>
        </xsd:complexType>
      </xsd:element>
      <xsd:element name="RegisterUserResponse" type="tns:User"/>
      <xsd:element name="LookupUser">
        <xsd:complexType>
          <xsd:sequence>
            <xsd:element name="username" type="xsd:string"/>
          </xsd:sequence>
        </xsd:complexType>
      </xsd:element>
      <xsd:element name="LookupUserResponse" type="tns:User"/>
      <xsd:element name="Error">
        <xsd:complexType>
          <xsd:sequence>
            <xsd:element name="code" type="xsd:string"/>
            <xsd:element name="message" type="xsd:string"/>
            <xsd:element name="requestId" type="xsd:string"/>
            <xsd:element name="details" type="xsd:string" minOccurs="0"/>
          </xsd:sequence>
        </xsd:complexType>
      </xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="RegisterUserInput">
    <wsdl:part name="parameters" element="tns:RegisterUser"/>
  </wsdl:message>
  <wsdl:message name="RegisterUserOutput">
    <wsdl:part name="parameters" element="tns:RegisterUserResponse"/>
  </wsdl:message>
  <wsdl:message name="LookupUserInput">
    <wsdl:part name="parameters" element="tns:LookupUser"/>
  </wsdl:message>
  <wsdl:message name="LookupUserOutput">
    <wsdl:part name="parameters" element="tns:LookupUserResponse"/>
  </wsdl:message>
  <wsdl:message name="ErrorOutput">
    <wsdl:part name="fault" element="tns:Error"/>
  </wsdl:message>
  <wsdl:portType name="UsersPortType">
    <wsdl:operation name="RegisterUser">
      <wsdl:input message="tns:RegisterUserInput"/>
      <wsdl:output message="tns:RegisterUserOutput"/>
      <wsdl:fault name="Error" message="tns:ErrorOutput"/>
    </wsdl:operation>
    <wsdl:operation name="LookupUser">
      <wsdl:input message="tns:LookupUserInput"/>
      <wsdl:output message="tns:LookupUserOutput"/>
      <wsdl:fault name="Error" message="tns:ErrorOutput"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="UsersBinding" type="tns:UsersPortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="RegisterUser">
      <soap:operation soapAction="{register}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="Error"><soap:fault name="Error" use="literal"/></wsdl:fault>
    </wsdl:operation>
    <wsdl:operation name="LookupUser">
      <soap:operation soapAction="{lookup}" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
      <wsdl:fault name="Error"><soap:fault name="Error" use="literal"/></wsdl:fault>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="UsersService">
    <wsdl:port name="UsersPort" binding="tns:UsersBinding">
      <soap:address location="{location}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wsdl_is_well_formed_and_names_both_operations_and_the_address() {
        let doc = document("http://127.0.0.1:7181/soap");
        let mut reader = xml::reader::EventReader::new(doc.as_bytes());
        loop {
            match reader.next() {
                Ok(xml::reader::XmlEvent::EndDocument) => break,
                Ok(_) => {}
                Err(e) => panic!("malformed wsdl: {e}"),
            }
        }
        for needle in [
            "soapAction=\"urn:troupe:users:v1#RegisterUser\"",
            "soapAction=\"urn:troupe:users:v1#LookupUser\"",
            "location=\"http://127.0.0.1:7181/soap\"",
            "style=\"document\"",
            "use=\"literal\"",
        ] {
            assert!(doc.contains(needle), "{needle}");
        }
        assert!(document("http://x/<a>&").contains("http://x/&lt;a&gt;&amp;"));
    }
}
